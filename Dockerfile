# hookrelay's image: a static binary on scratch, with CA certificates for
# HTTPS receivers, running as a user that is not root. It pulls nothing:
# `make image` builds the binary and this build context (.image/) from what
# is on the machine, then `docker build -t hookrelay:latest .image`.
#
#   make image
#   docker run --rm -e DATABASE_URL=… hookrelay:latest migrate
#   docker run -e DATABASE_URL=… -e HOOKRELAY_ADMIN_TOKEN=… -p 8080:8080 hookrelay:latest
#
# compose.yaml runs it beside Postgres.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY passwd group /etc/
COPY hookrelay /hookrelay
USER 65532:65532
ENV HOOKRELAY_ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["/hookrelay", "healthcheck"]
ENTRYPOINT ["/hookrelay"]
CMD ["serve"]
