# syntax=docker/dockerfile:1
# One image for every platform process (k8s/, docs/kubernetes.md):
#   python -m services registry|identity|vault|consent|log|judicial|issuance|health   (the entrypoint + the name)
#   python -m services.edge                          the HTTP edge (the Deployment's command)
#   python -m portal                                 the demo portal
#   python -m services.probe ready|live              the mutual-TLS health probe of the gRPC services
#   python -c "from db.migrate import upgrade; ..."  the migration Job (k8s/migrate/)
#   locust -f loadtest/locustfile.py --master|--worker   the distributed load test (k8s/loadtest/)
# `pip install .` installs every package with its data (pyproject.toml package-data: the edge's and the portal's
# templates, the fonts, the migrations' .ini/.mako, the protos); loadtest/ is one of those packages.
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
# Byte-compile them too (pip compiled what it installed): the pods' root filesystem is read-only, and
# `import protos` then writes nothing.
RUN /opt/dinhdanh/bin/python -m compileall -q "$(/opt/dinhdanh/bin/python -c 'import protos; print(protos.ROOT)')"

FROM python:3.11-slim
RUN groupadd --system --gid 10001 dinhdanh \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/dinhdanh --create-home \
      --shell /usr/sbin/nologin dinhdanh
COPY --from=build /opt/dinhdanh /opt/dinhdanh
ENV PATH=/opt/dinhdanh/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp
WORKDIR /home/dinhdanh
# `locust -f loadtest/locustfile.py` from the working directory: the installed package, not a copy of the source.
RUN ln -s /opt/dinhdanh/lib/python3.11/site-packages/loadtest /home/dinhdanh/loadtest
# Numeric, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
ENTRYPOINT ["python", "-m", "services"]
