"""Text files people hand callwatch (a rules YAML, a metadata CSV, the keys file): UTF-8 or GB18030.

Chinese users save both: Excel and Notepad on a Chinese Windows write GBK (which GB18030 contains) unless told
otherwise, most other tools UTF-8. UTF-8 is tried first and strictly, because GBK text is almost never valid
UTF-8 while UTF-8 Chinese often decodes as GB18030 into nonsense. Lives here, beside the rules, so that the
rules package and the service share it without the rules depending on the service.
"""

from __future__ import annotations

# In the order tried; utf-8-sig reads UTF-8 with or without the byte-order mark Excel writes.
ENCODINGS = ("utf-8-sig", "gb18030")


class UndecodableText(ValueError):
    """Bytes that are text in none of ENCODINGS; the message names the file and what was tried."""


def decode_text(data: bytes, name: str) -> str:
    """`data` as text: UTF-8 (with or without BOM), else GB18030/GBK; else UndecodableText naming `name`."""
    try:
        return data.decode(ENCODINGS[0])
    except UnicodeDecodeError as err:
        first = err
    try:
        return data.decode(ENCODINGS[1])
    except UnicodeDecodeError:
        pass
    raise UndecodableText(f"{name}: not text in UTF-8 (byte {first.start} is not valid) nor in GB18030/GBK; "
                          "save it as UTF-8")
