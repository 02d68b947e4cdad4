"""Garden error types. Each maps to the five-key JSON envelope (see garden/api/codec.py)."""

from __future__ import annotations


class GardenError(Exception):
    """An error whose envelope `Type` is "" (a plain Go error on the client side); HTTP 500."""

    type_name = ""
    status = 500
    handle = ""
    process_id = ""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ContainerNotFoundError(GardenError):
    type_name = "ContainerNotFoundError"
    status = 404

    def __init__(self, handle: str):
        super().__init__(f"unknown handle: {handle}")
        self.handle = handle


class ProcessNotFoundError(GardenError):
    type_name = "ProcessNotFoundError"
    status = 404

    def __init__(self, process_id: str):
        super().__init__(f"unknown process: {process_id}")
        self.process_id = process_id


class ExecutableNotFoundError(GardenError):
    type_name = "ExecutableNotFoundError"


class ServiceUnavailableError(GardenError):
    type_name = "ServiceUnavailableError"


class UnrecoverableError(GardenError):
    type_name = "UnrecoverableError"


class BadRequestError(GardenError):
    """Malformed input (JSON, types, values). Garden answers these with a plain 500 envelope."""
