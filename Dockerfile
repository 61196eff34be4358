FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 1000 app
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --chown=app:app . .
USER app
# Hashed, compressed static files are part of the image; `start --no-collectstatic` serves them.
RUN python manage.py collectstatic --noinput -v0
EXPOSE 8000
CMD ["python", "manage.py", "start", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--no-collectstatic"]
