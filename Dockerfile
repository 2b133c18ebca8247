# syntax=docker/dockerfile:1
# execgate's container image: the wheel is built in a throwaway stage and installed alone,
# from binary wheels, into a slim Python with no compilers; it runs as a non-root user.
#   docker build -t execgate .
#   docker run --rm -p 8080:8080 -p 50051:50051 -v execgate:/var/lib/execgate execgate
# The default command serves the product in one process (SQLite in the volume); the same
# image runs `execgate gateway`, `execgate service`, `execgate demo` and `execgate admin`
# (deploy/compose.yaml, deploy/kubernetes/).
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
RUN python -m pip install --no-cache-dir build==1.6.1
COPY pyproject.toml README.md LICENSE ./
COPY gen ./gen
COPY service ./service
COPY gateway ./gateway
COPY singleprocess ./singleprocess
COPY observability ./observability
COPY runtime ./runtime
RUN python -m build --wheel --outdir /dist .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/execgate/bin:$PATH \
    EXECGATE_STORE=sqlite:////var/lib/execgate/execgate.db \
    EXECGATE_LISTEN=0.0.0.0:50051 \
    EXECGATE_GRPC_LISTEN=0.0.0.0:50051 \
    EXECGATE_GATEWAY_LISTEN=0.0.0.0:8080
RUN groupadd --system --gid 10001 execgate \
    && useradd --system --uid 10001 --gid execgate --home-dir /var/lib/execgate \
       --create-home --shell /usr/sbin/nologin execgate
# The release test (scripts/check_wheel.py, run by CI) installs the wheel with this very
# script into a clean virtual environment, then runs the demo, a request and the health check.
RUN --mount=type=bind,from=builder,source=/dist,target=/tmp/dist \
    --mount=type=bind,source=scripts/install_wheel.sh,target=/tmp/install_wheel.sh \
    python -m venv /opt/execgate \
    && sh /tmp/install_wheel.sh /tmp/dist
COPY scripts/healthcheck.py /opt/execgate/healthcheck.py
# Numeric, so that Kubernetes runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/execgate
VOLUME ["/var/lib/execgate"]
# 8080: REST (gateway, serve); 50051: gRPC (service, serve).
EXPOSE 8080 50051
# HTTP /healthz by default; a `service` container checks grpc://127.0.0.1:50051 instead.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/opt/execgate/healthcheck.py", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["execgate"]
CMD ["serve"]
