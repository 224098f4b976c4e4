# syntax=docker/dockerfile:1
# One image for every platform process:
#   python -m services registry|identity   (the Deployments pass the service name as the argument)
#   python -c "from db.migrate import upgrade; ..."   (the migration Job, k8s/migrate/)
# Build: docker build -t dinhdanh:0.1.0 .      Settings come only from DINHDANH_* variables.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/dinhdanh
WORKDIR /src
COPY . .
RUN /opt/dinhdanh/bin/pip install .
# Generate the gRPC modules into the installed package. Run from / so that `-m protos` finds the
# installed package, not the source tree in /src.
WORKDIR /
RUN /opt/dinhdanh/bin/python -m protos
# Byte-compile them too: the pods' root filesystem is read-only, and `import protos` then writes nothing.
RUN /opt/dinhdanh/bin/python -m compileall -q "$(/opt/dinhdanh/bin/python -c 'import protos; print(protos.ROOT)')"

FROM python:3.11-slim
RUN groupadd --system --gid 10001 dinhdanh \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/dinhdanh --create-home \
      --shell /usr/sbin/nologin dinhdanh
COPY --from=build /opt/dinhdanh /opt/dinhdanh
ENV PATH=/opt/dinhdanh/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /home/dinhdanh
# Numeric, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
ENTRYPOINT ["python", "-m", "services"]
