"""Images and audio in a turn, whatever the platform.

Adapters only say what a message carries (:class:`~honeychat.core.types.Attachment`,
with a ``fetch`` downloader when the file can be downloaded). The core decides
the rest, here:

* :mod:`.download` fetches the bytes under a size cap and a deadline, and
  checks the type by content (magic bytes, :mod:`.sniff`), never by name;
* :mod:`.pipeline` turns them into the user's turn: a voice note becomes its
  transcript, an image becomes an OpenAI ``image_url`` part beside the
  caption (``IMAGE_MODE=inline``) or a description written by a vision model
  (``describe``), and answers by voice when the character should;
* :mod:`.items` holds the types plugins see in the media hooks.

The calls to ``/audio/transcriptions`` and ``/audio/speech`` live in
:mod:`honeychat.core.media_api`.
"""
