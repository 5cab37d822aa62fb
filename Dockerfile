# One image for web and workers (EXTRAS=ml: torch from the CPU wheel index, for the MiniLM guard,
# evaluation and moderation) and for the GPU worker (EXTRAS=ml,gpu, TORCH_INDEX="": CUDA builds).
FROM python:3.11-slim
ARG EXTRAS="ml"
ARG TORCH_INDEX="https://download.pytorch.org/whl/cpu"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DEBUG=0
WORKDIR /app
COPY . .
RUN spec="."; if [ -n "$EXTRAS" ]; then spec=".[$EXTRAS]"; fi; \
    index=""; if [ -n "$TORCH_INDEX" ]; then index="--extra-index-url $TORCH_INDEX"; fi; \
    pip install --no-cache-dir -c constraints.txt $index "$spec"
RUN useradd --create-home aegis && mkdir -p /app/var && chown aegis /app/var
USER aegis
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--preload", "--workers", "3"]
