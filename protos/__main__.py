"""``python -m protos``: regenerate the gRPC modules from ``protos/**/*.proto``."""

from protos import generate

if __name__ == "__main__":
    done = generate(force=True)
    print(f"generated {len(done)} proto file(s)")
