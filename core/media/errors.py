"""Why a media item could not be used: each error carries the sentence the user sees."""

from __future__ import annotations


class MediaError(Exception):
    """A media item cannot be used in this turn.

    ``user_message`` is what the user is told; ``str(error)`` is for logs.
    """

    user_message = "Sorry, I couldn't open that. Could you tell me in words?"

    def __init__(self, detail: str, user_message: str | None = None) -> None:
        super().__init__(detail)
        if user_message is not None:
            self.user_message = user_message


class MediaTooLarge(MediaError):
    """The file (or the voice note's length) is over the configured limit."""

    user_message = "That file is too big for me to open. Could you send a smaller one?"


class MediaUnsupported(MediaError):
    """The bytes are not a format we can use (checked by content, not by name)."""

    user_message = (
        "I can't open that kind of file. I can look at JPEG, PNG, GIF and WebP images "
        "and listen to OGG, MP3, M4A, WAV, WebM and FLAC audio."
    )


class MediaDownloadFailed(MediaError):
    """The platform did not give us the file in time."""

    user_message = "I couldn't download that file just now. Could you send it again?"


class MediaServiceError(MediaError):
    """Transcription, description or speech failed (endpoint error, timeout, not configured)."""

    user_message = "I couldn't make that out just now. Could you try again, or tell me in words?"
