"""Request verification: a workflow's ``verify`` list compiled into checks.

Sans-IO and above :mod:`hookline.definition` only (it parses options with its
``Fields``): the engine compiles a workflow's checks at load time and the HTTP ingress
runs them on each request; this package imports neither.
"""

from ._signed import DirectAnswer as DirectAnswer
from ._signed import Opened as Opened
from ._signed import SignedRequest as SignedRequest
from ._signed import Verified as Verified
from ._verify import SCHEMES as SCHEMES
from ._verify import Verification as Verification
from ._verify import Verifier as Verifier
from ._verify import compile_verifiers as compile_verifiers
