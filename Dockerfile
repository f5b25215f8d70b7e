# drc: one image for every drc process (workers, vantage points, the API, operator commands);
# docker-compose.yml picks the command. `docker build -t drc:0.1.0 .`
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The project as a regular (non-editable) install: the packages and their data files
# (runbooks, migrations, templates) come from pyproject.toml, the source tree is not kept.
COPY . /tmp/drc-src
RUN pip install /tmp/drc-src && rm -rf /tmp/drc-src

# Not root: drc needs no privilege to probe, call supervisord's XML-RPC or HAProxy's socket.
# Its home (reports, the notification outbox) is a volume in compose; a fresh named volume
# takes this directory's owner.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/drc --shell /usr/sbin/nologin drc \
    && install -d -o drc -g drc -m 0750 /var/lib/drc
ENV DRC_HOME=/var/lib/drc
WORKDIR /var/lib/drc
USER drc

ENTRYPOINT ["drc"]
CMD ["--help"]
