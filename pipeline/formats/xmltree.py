"""A small XML element tree that remembers the line of every element. Pure (standard library).

ElementTree forgets where an element was; an import must name the line of what it cannot
carry over, so this reads with expat directly. Entity declarations are refused (no entity
expansion bombs), and the external DTD a document names is never fetched: validating against
a DTD is the DTD validator's job (`pipeline/tools/xmllint.py`). Processing instructions inside
an element are kept, in order, as (target, data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.parsers import expat

from pipeline.core.errors import InvalidInput


@dataclass(slots=True)
class Element:
    tag: str
    attrib: dict[str, str]
    line: int
    children: list[Element] = field(default_factory=list)
    text: str = ""
    instructions: list[tuple[str, str, int]] = field(default_factory=list)  # (target, data, line)

    def find(self, tag: str) -> Element | None:
        return next((c for c in self.children if c.tag == tag), None)

    def findall(self, tag: str) -> list[Element]:
        return [c for c in self.children if c.tag == tag]

    def findtext(self, tag: str, default: str = "") -> str:
        found = self.find(tag)
        return found.text.strip() if found is not None else default


def parse(path: str, text: bytes) -> Element:
    """The root element of an XML document; InvalidInput naming file and line if it is not XML."""
    parser = expat.ParserCreate()
    stack: list[Element] = []
    root: list[Element] = []

    def start(tag: str, attrib: dict[str, str]) -> None:
        element = Element(tag, dict(attrib), parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(element)
        else:
            root.append(element)
        stack.append(element)

    def end(tag: str) -> None:
        stack.pop()

    def data(chunk: str) -> None:
        if stack:
            stack[-1].text += chunk

    def instruction(target: str, content: str) -> None:
        if stack:
            stack[-1].instructions.append((target, content, parser.CurrentLineNumber))

    def refuse_entities(*_: object) -> None:
        raise _Refused(parser.CurrentLineNumber, "entity declarations are not accepted")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    parser.ProcessingInstructionHandler = instruction
    parser.EntityDeclHandler = refuse_entities
    parser.UnparsedEntityDeclHandler = refuse_entities
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise InvalidInput(
            f"{path}:{exc.lineno}: not well-formed XML: {expat.ErrorString(exc.code)}", code="invalid-xml"
        ) from exc
    except _Refused as exc:
        raise InvalidInput(f"{path}:{exc.line}: {exc.reason}", code="invalid-xml") from exc
    if not root:
        raise InvalidInput(f"{path}:1: no XML element", code="invalid-xml")
    return root[0]


class _Refused(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason
