"""``dinhdanh audit``: check the transparency log offline with nothing but its published key, or fetch it.

``verify`` (each check needs ``--key``, the verifier key string or a file holding it, as served at /log/key):

- ``--checkpoint FILE``: the signed note (c2sp.org/signed-note, c2sp.org/tlog-checkpoint);
- ``--inclusion PROOF.json --checkpoint FILE``: a leaf (or leaf hash) at an index in that checkpoint's tree
  (RFC 9162 §2.1.3.2); the JSON is ``{"index", "tree_size", "hashes": [base64…], "leaf": base64}``
  (``leaf_hash`` instead of ``leaf`` also works), e.g. one entry of ``ListMyEntries``;
- ``--consistency OLD NEW``: two checkpoint files; the proof from ``--proof FILE`` (``{"hashes": […]}``) or
  asked of the log service of the stack in ``--var`` (RFC 9162 §2.1.4.2);
- ``--tiles DIR``: a downloaded tile set (``DIR/checkpoint`` and ``DIR/tile/...``): every entry re-hashed, every
  tile and the root recomputed and compared (c2sp.org/tlog-tiles).

Exit codes: 0 verified, 1 refused (the line says what failed), 2 unusable input (a missing file, no key).
``download DIR``: the checkpoint, the key and every tile and entry bundle of that checkpoint, over HTTP from
the edge (``--url``, default the stack's ``<issuer>/log``). ``proof INDEX``: an inclusion proof as JSON.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import typer

from audit import checkpoint as notes
from audit import tiles, verify
from cli.output import JsonOption, VarOption, emit, fail, run, stack_info
from protos.audit.v1 import log_pb2 as pb
from protos.audit.v1 import log_pb2_grpc as pb_grpc

app = typer.Typer(help="The transparency log: verify offline, download, fetch proofs.", no_args_is_help=True)

VERIFIED, REFUSED, UNUSABLE = 0, 1, 2


def _read(path: Path, as_json: bool) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror}", as_json, UNUSABLE)
        raise


def _key(text: str | None, as_json: bool) -> verify.Key:
    if not text:
        fail("--key is required: the log's verifier key (as served at /log/key), or a file holding it", as_json,
             UNUSABLE)  # fmt: skip
        raise AssertionError
    candidate = Path(text)
    if "+" not in text or candidate.exists():
        text = _read(candidate, as_json).decode(errors="replace")
    return verify.Key.parse(text)


def _verdict(data: dict[str, Any], line: str, as_json: bool) -> None:
    emit({"verified": True, **data}, as_json, lambda: print(f"OK: {line}"))


def _refused(error: verify.Refused, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"verified": False, "error": str(error)}, ensure_ascii=False))
    else:
        print(f"REFUSED: {error}")
    raise typer.Exit(REFUSED)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@app.command("verify")
def verify_cmd(
    key: str = typer.Option(None, "--key", help="The verifier key <name>+<id>+<base64>, or a file holding it."),
    checkpoint: Path = typer.Option(
        None, "--checkpoint", help="A signed checkpoint (the note, as at /log/checkpoint)."
    ),
    inclusion: Path = typer.Option(None, "--inclusion", help="An inclusion proof (JSON) against --checkpoint."),
    consistency: tuple[Path, Path] | None = typer.Option(None, "--consistency", help="OLD NEW checkpoint files."),
    proof: Path = typer.Option(None, "--proof", help='A consistency proof file ({"hashes": [...]}).'),
    tile_dir: Path = typer.Option(None, "--tiles", help="A downloaded tile set (`dinhdanh audit download`)."),
    origin: str = typer.Option(None, "--origin", help="Require this checkpoint origin."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Verify a checkpoint, an inclusion proof, a consistency proof or a whole tile set, offline."""
    try:
        vkey = _key(key, as_json)
        if tile_dir is not None:
            _verify_tiles(vkey, tile_dir, origin, as_json)
        elif consistency:
            _verify_consistency(vkey, consistency, proof, origin, var, as_json)
        elif checkpoint is not None:
            cp = verify.checkpoint(_read(checkpoint, as_json), vkey, origin, what=str(checkpoint))
            if inclusion is None:
                _verdict(_cp_data(cp), f"checkpoint of {cp.origin}, size {cp.size}, signed by {vkey.name}", as_json)
                return
            claim = verify.parse_proof_file(_read(inclusion, as_json).decode(errors="replace"))
            index = verify.inclusion(claim, cp)
            _verdict({**_cp_data(cp), "index": index}, f"entry {index} is in the tree of size {cp.size}", as_json)
        else:
            fail("say what to verify: --checkpoint, --inclusion with --checkpoint, --consistency or --tiles",
                 as_json, UNUSABLE)  # fmt: skip
    except verify.Refused as error:
        _refused(error, as_json)


def _cp_data(cp: notes.Checkpoint) -> dict[str, Any]:
    return {"origin": cp.origin, "size": cp.size, "root_hash": _b64(cp.root_hash)}


def _verify_tiles(vkey: verify.Key, folder: Path, origin: str | None, as_json: bool) -> None:
    cp = verify.checkpoint(_read(folder / "checkpoint", as_json), vkey, origin, what=str(folder / "checkpoint"))

    def read(name: str) -> bytes | None:
        path = folder / name
        return path.read_bytes() if path.is_file() else None

    count = verify.tile_set(cp, read)
    _verdict({**_cp_data(cp), "entries": count}, f"{count} entries re-hashed, tiles and root match size {cp.size}",
             as_json)  # fmt: skip


def _verify_consistency(vkey: verify.Key, files: tuple[Path, Path], proof: Path | None, origin: str | None,
                        var: Path, as_json: bool) -> None:  # fmt: skip
    old = verify.checkpoint(_read(files[0], as_json), vkey, origin, what=str(files[0]))
    new = verify.checkpoint(_read(files[1], as_json), vkey, origin, what=str(files[1]))
    if proof is not None:
        claim = verify.parse_proof_file(_read(proof, as_json).decode(errors="replace"))
        try:
            hashes = [base64.b64decode(h, validate=True) for h in claim["hashes"]]
        except (KeyError, TypeError, ValueError):
            raise verify.Refused(f'{proof}: not a consistency proof ({{"hashes": [base64...]}})') from None
    else:
        info = stack_info(var, as_json)

        async def ask() -> list[bytes]:
            async with info.channel("log") as channel:
                reply = await pb_grpc.LogStub(channel).GetConsistencyProof(
                    pb.GetConsistencyProofRequest(old_size=old.size, new_size=new.size), timeout=20
                )
            return list(reply.hashes)

        hashes = run(ask, as_json)
    verify.consistency(old, new, hashes)
    _verdict({"old_size": old.size, "new_size": new.size}, f"size {new.size} extends size {old.size}", as_json)


@app.command("download")
def download_cmd(
    folder: Path = typer.Argument(..., help="Where to write checkpoint, key and tile/..."),
    url: str = typer.Option("", "--url", help="The log's prefix (default: the stack's <issuer>/log)."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Fetch the latest checkpoint and every tile and entry bundle of it from the edge (c2sp.org/tlog-tiles)."""
    prefix = (url or f"{stack_info(var, as_json).oidc_issuer}/log").rstrip("/")

    async def fetch() -> tuple[dict[str, bytes], int]:
        async with httpx.AsyncClient(timeout=30) as http:
            note = await _get(http, f"{prefix}/checkpoint")
            key = await _get(http, f"{prefix}/key")
            text = note.decode(errors="replace")
            try:
                cp = notes.parse_checkpoint(text[: text.index("\n\n") + 1])
            except (ValueError, notes.NoteError):
                raise verify.Refused(f"{prefix}/checkpoint: not a checkpoint") from None
            paths = tiles.tile_set(cp.size)
            limit = asyncio.Semaphore(8)

            async def one(path: tiles.TilePath) -> tuple[str, bytes]:
                async with limit:
                    return str(path), await _get(http, f"{prefix}/{path}")

            files = dict(await asyncio.gather(*(one(p) for p in paths)))
        return {"checkpoint": note, "key": key, **files}, cp.size

    def save(files: dict[str, bytes]) -> None:
        for name, data in files.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    try:
        files, size = asyncio.run(fetch())
        save(files)
        result = {"folder": str(folder), "size": size, "files": len(files)}
    except httpx.HTTPError as error:
        fail(f"cannot download the log: {error}", as_json, UNUSABLE)
    except verify.Refused as error:
        _refused(error, as_json)
    emit(result, as_json, lambda: print(f"downloaded size {result['size']}: {result['files']} files in {folder}"))


async def _get(http: httpx.AsyncClient, url: str) -> bytes:
    reply = await http.get(url)
    if reply.status_code != 200:
        raise httpx.HTTPStatusError(f"{url}: HTTP {reply.status_code}", request=reply.request, response=reply)
    return reply.content


@app.command("proof")
def proof_cmd(
    index: int = typer.Argument(..., min=0, help="The leaf index."),
    size: int = typer.Option(0, "--size", min=0, help="The tree size (0: the latest checkpoint's)."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """An inclusion proof from the log service, as JSON for `verify --inclusion` (with the leaf hash)."""
    info = stack_info(var, as_json)

    async def ask() -> pb.InclusionProof:
        async with info.channel("log") as channel:
            return await pb_grpc.LogStub(channel).GetInclusionProof(
                pb.GetInclusionProofRequest(index=index, tree_size=size), timeout=20
            )

    reply = run(ask, as_json)
    data = {"index": reply.index, "tree_size": reply.tree_size, "leaf_hash": _b64(reply.leaf_hash),
            "hashes": [_b64(h) for h in reply.hashes]}  # fmt: skip
    print(json.dumps(data))
