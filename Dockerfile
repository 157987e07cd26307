# wangge API image: `docker compose up` (see docker-compose.yml) or
#   docker build -t wangge . && docker run -p 8000:8000 wangge
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WANGGE_DATA_DIR=/data

WORKDIR /src

# dependencies first, in their own layer: rebuilt only when pyproject.toml changes
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# maps/static/vendor (MapLibre, Leaflet) is committed: nothing is fetched at build or run time
COPY . .
RUN pip install . \
    && rm -rf build *.egg-info

# run as an unprivileged user; /data (the wangge-data volume in compose) belongs to it, and
# a new named volume takes this ownership when first mounted
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/wangge wangge \
    && mkdir -p /data \
    && chown wangge:wangge /data
USER wangge
WORKDIR /data

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["wangge", "serve", "--host", "0.0.0.0", "--port", "8000"]
