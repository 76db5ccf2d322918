"""Errors the engine raises for problems a user can act on.

Every error a user can cause (bad input file, band out of range, foreign model file, device
out of memory, cancellation) is a subclass of :class:`UniadrsError`. Its message is one clear
line; the command line prints it without a traceback and the QGIS plugin turns it into a
``QgsProcessingException``.
"""

import errno
from typing import Optional, Sequence, Tuple

#: File-system errors a user can act on (a full disk or quota, a file-size limit, a name
#: too long, no permission, a read-only file system, a path through a file or to a folder
#: that is missing): one line, not a traceback.
FILE_SYSTEM_ERRORS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.ENAMETOOLONG,
        errno.EACCES,
        errno.EROFS,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EEXIST,
        errno.EISDIR,
    }
)


def file_system_message(error: BaseException) -> Optional[str]:
    """One line on a file-system error a user can act on (:data:`FILE_SYSTEM_ERRORS`), or None.

    Example:
        >>> file_system_message(OSError(errno.ENOSPC, "No space left on device", "o.tif"))
        'No space left on device: o.tif'
    """
    if not isinstance(error, OSError) or error.errno not in FILE_SYSTEM_ERRORS:
        return None
    where = f": {error.filename}" if error.filename else ""
    return f"{error.strerror or error}{where}"


class UniadrsError(Exception):
    """Base class of every error whose message is meant for the user."""


class InputError(UniadrsError):
    """A raster, mask or parameter given by the user cannot be used."""


class EmptyBandsError(InputError):
    """Some selected bands hold no value anywhere, so no pixel has a value in every band.

    Attributes:
        empty_bands: The 1-based bands that hold no value (nodata or not finite everywhere).
        kept_bands: The other selected bands, in their order.
    """

    def __init__(self, message: str, empty_bands: Sequence[int], kept_bands: Sequence[int]):
        super().__init__(message)
        self.empty_bands: Tuple[int, ...] = tuple(empty_bands)
        self.kept_bands: Tuple[int, ...] = tuple(kept_bands)


class ContainerError(InputError):
    """A file holds several rasters (NetCDF variables, HDF datasets) and no band of its own.

    The message names the subdatasets to pass instead.
    """


class ModelFileError(UniadrsError):
    """A model file is missing, unreadable, foreign or carries code (a pickled payload)."""


class DeviceError(UniadrsError):
    """The requested device does not exist or ran out of memory."""


class TrainingError(UniadrsError):
    """Training cannot go on (empty classes, non-finite losses, bad configuration)."""


class CancelledError(UniadrsError):
    """The caller asked the engine to stop; no output file was left behind."""
