# One image for the API and the workers.  CPU torch by default; for a GPU worker build with
#   --build-arg TORCH_SPEC="torch==2.13.0" --build-arg TORCH_INDEX=<your CUDA wheel index>
FROM python:3.11-slim
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX="https://download.pytorch.org/whl/cpu"
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 GXNOR_DATA_DIR=/data
WORKDIR /srv/gxnor
RUN pip install --index-url "$TORCH_INDEX" "$TORCH_SPEC"
COPY pyproject.toml README.md ./
COPY gxnor_core gxnor_core
COPY gxnor_cli gxnor_cli
COPY app app
COPY worker worker
COPY frontend frontend
# /datasets: GXNOR_DATASETS_DIR in docker-compose.yml (a new volume there takes this owner)
RUN pip install -e . && useradd --create-home gxnor && mkdir -p /data /datasets && chown gxnor /data /datasets
USER gxnor
VOLUME ["/data"]
EXPOSE 8000
CMD ["gxnor", "api", "--host", "0.0.0.0", "--port", "8000"]
