"""The BROKER_LOGGER config resource (KIP-412): the broker's loggers and their levels, read and
changed at run time (`kafka-configs --entity-type broker-loggers`), as Kafka's Log4jController
does for log4j. Ottla's loggers are Python's: the root logger and every `ottla.*` logger.

Levels use Kafka's (log4j's) names; Python's WARNING and CRITICAL are WARN and FATAL, and TRACE
is a level below DEBUG that Ottla itself never logs at. A change lasts until the process ends:
Kafka does not persist logger levels either.
"""

from __future__ import annotations

import logging

from ottla.wire.errors import ErrorCode, KafkaError

ROOT = "root"
TRACE = 5
LEVELS = {"TRACE": TRACE, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING, "ERROR": logging.ERROR, "FATAL": logging.CRITICAL}


def level_name(level: int) -> str:
    """Kafka's name for a Python level: the most verbose of Kafka's levels that it lets through."""
    return next((name for name, value in LEVELS.items() if level <= value), "FATAL")


def loggers() -> dict[str, str]:
    """Every logger of the broker with its effective level, by name."""
    manager = logging.Logger.manager
    found = {ROOT: level_name(logging.getLogger().getEffectiveLevel())}
    for name, logger in list(manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and (name == "ottla" or name.startswith("ottla.")):
            found[name] = level_name(logger.getEffectiveLevel())
    return found


def _logger(name: str) -> logging.Logger:
    if name == ROOT:
        return logging.getLogger()
    logger = logging.Logger.manager.loggerDict.get(name)
    if not isinstance(logger, logging.Logger) or not (name == "ottla" or name.startswith("ottla.")):
        raise KafkaError(ErrorCode.INVALID_CONFIG, f"Logger {name} does not exist!")
    return logger


def check_level(name: str, level: str | None) -> None:
    """Kafka's refusal of a level it does not know (names are case-sensitive there too)."""
    _logger(name)
    if level not in LEVELS:
        valid = ", ".join(sorted(LEVELS))
        raise KafkaError(
            ErrorCode.INVALID_CONFIG, f"Cannot set the log level of {name} to {level} as it is not a supported log level. Valid log levels are {valid}"
        )


def check_unset(name: str) -> None:
    if name == ROOT:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Removing the log level of the root logger is not allowed")
    _logger(name)


def set_level(name: str, level: str) -> None:
    _logger(name).setLevel(LEVELS[level])


def unset_level(name: str) -> None:
    """The logger takes its parent's level again."""
    _logger(name).setLevel(logging.NOTSET)
