# The image the compose file's worker and feature-server services run.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY stream ./stream
COPY devstack ./devstack
COPY feature_repo ./feature_repo
COPY schemas ./schemas
RUN pip install --no-cache-dir -c constraints.txt .
USER nobody
