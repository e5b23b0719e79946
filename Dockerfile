# One image for every process of the portal: web (gunicorn, the default command), Celery worker
# and beat. The command lines are the Procfile's; docker-compose.yml shows them wired together.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORTAL_ENV=production \
    PORTAL_VAR_DIR=/var/lib/portal \
    GUNICORN_BIND=0.0.0.0:8000

RUN useradd --system --create-home --home-dir /home/portal --shell /usr/sbin/nologin portal

WORKDIR /app
# Requirements first, so a code change does not reinstall them.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# collectstatic imports the settings, which in production demand real secrets. Static files do
# not depend on them, so this one step runs in development mode with a throwaway var directory.
RUN PORTAL_ENV=development PORTAL_VAR_DIR=/tmp/build-var python manage.py collectstatic --noinput --verbosity 0 \
    && rm -rf /tmp/build-var \
    && mkdir -p /var/lib/portal \
    && chown portal:portal /var/lib/portal

USER portal
EXPOSE 8000
CMD ["gunicorn", "partner_portal.wsgi", "--config", "gunicorn.conf.py"]
