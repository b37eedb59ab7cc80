"""The x-fc-* headers FC sends to a custom runtime, with dummy credentials."""

#: Dummy temporary credentials as FC would send them; never real.
FC_HEADERS = {
    "x-fc-request-id": "req-0001",
    "x-fc-access-key-id": "STS.dummy-key-id",
    "x-fc-access-key-secret": "dummy-secret-value-9f8e7d",
    "x-fc-security-token": "dummy-token-CAIS-1a2b3c",
    "x-fc-function-name": "create-firmware",
    "x-fc-function-handler": "index.handler",
    "x-fc-function-memory": "512",
    "x-fc-function-timeout": "600",
    "x-fc-function-initializer": "index.initializer",
    "x-fc-initialization-timeout": "30",
    "x-fc-service-name": "ota-release",
    "x-fc-service-logproject": "ota-release-logs",
    "x-fc-service-logstore": "function-logs",
    "x-fc-region": "cn-shanghai",
    "x-fc-account-id": "123456789012",
    "x-fc-qualifier": "LATEST",
    "x-fc-version-id": "3",
}
