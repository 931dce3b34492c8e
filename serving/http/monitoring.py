"""Prometheus metrics of the predict API, at TF-Serving's path and under TF-Serving's names, so a
dashboard or alert written for `tensorflow_model_server --monitoring_config_file` reads this
server too:

    GET /monitoring/prometheus/metrics
    :tensorflow:serving:request_count{model_name="alae_mnist",status="OK"} 12
    :tensorflow:serving:request_latency_bucket{model_name="alae_mnist",API="predict",entrypoint="REST",le="10"} 0
    ...

request_count counts predict requests by their outcome, named as TF-Serving's status codes (an
HTTP 400 is INVALID_ARGUMENT, 404 NOT_FOUND, a client gone before its body was in CANCELLED, ...); request_latency is a histogram of their time
in microseconds, from the request's arrival to its answer, with TF-Serving's buckets (10 us
times 1.8^i; names and labels as tensorflow/serving issue #1959 shows them).
"""

import threading

BUCKETS_USEC = tuple(10 * 1.8**i for i in range(33))
STATUS_OF_HTTP = {200: "OK", 400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 405: "UNIMPLEMENTED", 408: "DEADLINE_EXCEEDED",
                  413: "RESOURCE_EXHAUSTED", 415: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
                  500: "INTERNAL", 503: "UNAVAILABLE"}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PredictMetrics:
    def __init__(self, model_name: str):
        self.model_name = model_name
        self._lock = threading.Lock()
        self._counts = {}  # status -> requests
        self._buckets = [0] * len(BUCKETS_USEC)  # requests at or below each bound (not cumulative yet)
        self._sum_usec = 0.0
        self._total = 0

    def record(self, http_status: int, seconds: float) -> None:
        status = STATUS_OF_HTTP.get(http_status, "UNKNOWN")
        usec = seconds * 1e6
        with self._lock:
            self._counts[status] = self._counts.get(status, 0) + 1
            bucket = next((i for i, bound in enumerate(BUCKETS_USEC) if usec <= bound), None)
            if bucket is not None:
                self._buckets[bucket] += 1
            self._sum_usec += usec
            self._total += 1

    def exposition(self) -> str:
        """The metrics in Prometheus's text format."""
        with self._lock:
            counts, buckets, total, sum_usec = dict(self._counts), list(self._buckets), self._total, self._sum_usec
        model = f'model_name="{self.model_name}"'
        latency = f'{model},API="predict",entrypoint="REST"'
        lines = ["# TYPE :tensorflow:serving:request_count counter"]
        lines += [f':tensorflow:serving:request_count{{{model},status="{status}"}} {count}' for status, count in sorted(counts.items())]
        lines.append("# TYPE :tensorflow:serving:request_latency histogram")
        cumulative = 0
        for bound, count in zip(BUCKETS_USEC, buckets):
            cumulative += count
            lines.append(f':tensorflow:serving:request_latency_bucket{{{latency},le="{bound:.6g}"}} {cumulative}')
        lines.append(f':tensorflow:serving:request_latency_bucket{{{latency},le="+Inf"}} {total}')
        # Every digit: a rounded sum moves in steps that swallow single requests once it is large.
        lines.append(f":tensorflow:serving:request_latency_sum{{{latency}}} {sum_usec!r}")
        lines.append(f":tensorflow:serving:request_latency_count{{{latency}}} {total}")
        return "\n".join(lines) + "\n"
