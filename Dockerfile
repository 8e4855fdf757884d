# One image for every nearby process; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

# The code stays root's and read-only; the processes run as nearby, which may
# write only var/ (Celery beat's schedule).
RUN useradd --system --create-home --uid 10001 nearby \
    && mkdir var \
    && chown nearby var

COPY config.py web.py worker.py load_data.py gunicorn.conf.py ./
COPY nearby ./nearby

USER nearby

# Inside a container the server must be reachable from the published port.
ENV GUNICORN_BIND=0.0.0.0:8000
EXPOSE 8000

CMD ["gunicorn", "-c", "gunicorn.conf.py", "web:app"]
