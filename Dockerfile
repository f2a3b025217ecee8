# GPU image for the Snakemake `container:` directive / apptainer on clusters:
#   docker build -t negrl:gpu . && snakemake --profile workflow/profiles/slurm ...
FROM nvidia/cuda:12.8.0-cudnn-runtime-ubuntu24.04
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 HF_HOME=/cache/hf
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip python3-venv git \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/negrl
ENV PATH=/opt/negrl/bin:$PATH
WORKDIR /opt/negrl/src
COPY pyproject.toml README.md ./
COPY negrl ./negrl
RUN pip install torch && pip install -e ".[gpu,test]"
COPY . .
CMD ["negrl", "--help"]
