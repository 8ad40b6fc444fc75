"""The process around the app: the HTTP protocol limits, workers, request ids, body reading,
error responses, heap freezing, and the replicas' shared revocation channel."""
