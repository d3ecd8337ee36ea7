# kube-image-exporter: build wheels in one stage, install them into a slim image without build tools.
# The same steps are tested without a container engine by tests/test_install.py.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
# With the aws extra (boto3): `--retention-source ecr=…` reads ECR lifecycle policies (docs/retention-ecr.md).
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[aws]"

FROM python:3.11-slim
RUN useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin exporter
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "kube-image-exporter[aws]" \
    && rm -rf /wheels
USER 65532:65532
EXPOSE 9706
ENTRYPOINT ["kube-image-exporter"]
CMD ["serve"]
