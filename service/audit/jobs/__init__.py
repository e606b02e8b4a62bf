"""The audit queue and its jobs: in-process workers, or Celery worker processes and their claims."""
