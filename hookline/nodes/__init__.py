"""Node types: one module per type, registered by name in the registry."""

from ._base import End as End
from ._base import Job as Job
from ._base import NodeConfig as NodeConfig
from ._base import NodeResult as NodeResult
from ._base import NodeSpec as NodeSpec
from ._call import NodeCall as NodeCall
from ._registry import NODE_TYPES as NODE_TYPES
from ._registry import register as register
