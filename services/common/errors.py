"""Errors shared by every service.

    HotleadError                 base; `retriable` says whether trying again can help
    ├── ConfigurationError       a setting or file is wrong: fix it, then restart
    ├── KafkaUnavailableError    the cluster does not answer (retriable)
    ├── TopicCreationError       the cluster refused to create a topic
    └── TopicMismatchError       a topic exists with a layout hotlead cannot use

Each message says what to do about it.
"""

from typing import ClassVar


class HotleadError(Exception):
    retriable: ClassVar[bool] = False


class ConfigurationError(HotleadError):
    pass


class KafkaUnavailableError(HotleadError):
    retriable = True

    def __init__(self, bootstrap: str, cause: BaseException | None = None) -> None:
        detail = f" ({type(cause).__name__}: {cause})" if cause else ""
        super().__init__(
            f"Kafka at {bootstrap} does not answer{detail}. Start the local broker with "
            "'make kafka-up', or point HOTLEAD_KAFKA_BOOTSTRAP at a running cluster."
        )
        self.bootstrap = bootstrap


class TopicCreationError(HotleadError):
    def __init__(self, failures: list[str]) -> None:
        super().__init__(
            "Kafka refused to create topics: "
            + "; ".join(failures)
            + ". Check HOTLEAD_REPLICATION_FACTOR against the number of brokers, "
            "and that this client may create topics."
        )
        self.failures = failures


class TopicMismatchError(HotleadError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "existing topics do not match the configuration: "
            + "; ".join(problems)
            + ". hotlead never changes partition counts itself (that would move keys "
            "between partitions): recreate the topic or set the partitions setting to match."
        )
        self.problems = problems
