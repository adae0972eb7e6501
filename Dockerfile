# press-monitor in a container (issue #8): non-root, state/ as a volume.
#   docker build -t press-monitor .
#   docker run -d --name monitor -p 8080:8080 \
#     -v "$PWD/monitor.toml:/srv/monitor.toml:ro" -v "$PWD/rules:/srv/rules" \
#     -v "$PWD/templates:/srv/templates" -v monitor-state:/srv/state press-monitor
# The config must listen on 0.0.0.0 inside the container: [web] listen = "0.0.0.0:8080".
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MONITOR_CONFIG=/srv/monitor.toml

WORKDIR /opt/press-monitor
COPY pyproject.toml README.md LICENSE ./
COPY monitor ./monitor
COPY rules ./rules
COPY templates ./templates
RUN pip install . \
    && groupadd --system --gid 10001 monitor \
    && useradd --system --uid 10001 --gid monitor --home-dir /srv --shell /usr/sbin/nologin monitor \
    && mkdir -p /srv/state \
    && chown -R monitor:monitor /srv

USER monitor
WORKDIR /srv
VOLUME ["/srv/state"]
EXPOSE 8080
# /healthz answers 503 when the database cannot be read.
HEALTHCHECK --interval=60s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# `docker stop` sends SIGTERM: the daemon drains within shutdown_timeout; give it that long.
STOPSIGNAL SIGTERM
ENTRYPOINT ["monitor"]
CMD ["--log-format", "json", "run"]
