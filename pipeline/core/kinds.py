"""Node kinds and node ids as values: `Kind` and `NodeId`, instead of string prefixes.

A node id is `kind:name`: `build:openssl@1a2b3c4d`, `binary:glibc-2.41-11.fc42`,
`module:base-runtime:f42` (a module's name holds its stream after a second colon), `repo:Server`,
`ostree:AtomicHost/host`, `iso:AtomicHost/installer`, `container:Cloud/base`. The built-in kinds
are the constants below; a plugin's kind (its entry point's name, `pipeline.plugins`) is any
other `Kind`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import InvalidInput


class Kind(str):
    """The kind of a node: a built-in one (`BUILD`, `MODULE`, ...) or a plugin's."""

    __slots__ = ()

    def of(self, node_id: str) -> bool:
        """Whether `node_id` is a node of this kind."""
        return node_id.startswith(f"{self}:")

    def node(self, name: str) -> str:
        """The id of this kind's node `name`: `OSTREE.node("AtomicHost/host")`."""
        return f"{self}:{name}"

    def name_of(self, node_id: str) -> str:
        """The name in a node id of this kind (`MODULE.name_of("module:gtk:3") == "gtk:3"`);
        InvalidInput for a node of another kind."""
        if not self.of(node_id):
            raise InvalidInput(f"{node_id!r} is not a {self} node", code="invalid-node")
        return node_id[len(self) + 1 :]


BUILD = Kind("build")  # one component built at one pin
BINARY = Kind("binary")  # a build made elsewhere, taken from a package source (binary pin)
MODULE = Kind("module")  # a module stream's repository
REPO = Kind("repo")  # a variant's repository
OSTREE = Kind("ostree")  # an OSTree commit of a variant
ISO = Kind("iso")  # an installer ISO (layered on an ostree node)
CONTAINER = Kind("container")  # a container image
BUILT_IN = (BUILD, BINARY, MODULE, REPO, OSTREE, CONTAINER, ISO)  # in the order nodes sort by kind


def kind_of(node_id: str) -> Kind:
    """The kind of a node id (what comes before its first colon)."""
    return Kind(node_id.partition(":")[0])


@dataclass(frozen=True, slots=True)
class NodeId:
    """A node id taken apart: its kind and its name (`str()` puts it back together)."""

    kind: Kind
    name: str

    @classmethod
    def parse(cls, text: str) -> NodeId:
        """InvalidInput unless `text` is `kind:name` with both parts."""
        kind, sep, name = text.partition(":")
        if not sep or not kind or not name:
            raise InvalidInput(f"not a node id: {text!r}", code="invalid-node")
        return cls(Kind(kind), name)

    @property
    def variant(self) -> str | None:
        """The variant the node belongs to (`repo:Server`: Server, `ostree:AtomicHost/host`:
        AtomicHost); None for builds, binary pins and modules, which belong to none."""
        return None if self.kind in (BUILD, BINARY, MODULE) else self.name.split("/", 1)[0]

    def __str__(self) -> str:
        return self.kind.node(self.name)
