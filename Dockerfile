# One image for web, workers and the GPU worker (built with EXTRAS=ml,gpu for the latter).
FROM python:3.11-slim
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DEBUG=0
WORKDIR /app
COPY . .
RUN spec="."; if [ -n "$EXTRAS" ]; then spec=".[$EXTRAS]"; fi; \
    pip install --no-cache-dir -c constraints.txt "$spec"
RUN useradd --create-home aegis && mkdir -p /app/var && chown aegis /app/var
USER aegis
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4"]
