"""The definition layer, below everything else: what a workflow file is made of.

Field validation, templates, comparison operators, units, the webhook router, problem
details, and mailbox primitives. Pure code on trio's primitives at most: it imports no
other hookline package but :mod:`hookline.errors`, so every layer above may use it.
"""

from ._compare import LITERAL_PATTERN as LITERAL_PATTERN
from ._compare import OPERATORS as OPERATORS
from ._compare import UNARY_FUNCTIONS as UNARY_FUNCTIONS
from ._compare import Condition as Condition
from ._cors import CorsPolicy as CorsPolicy
from ._cors import cors_answer_headers as cors_answer_headers
from ._cors import cors_preflight_headers as cors_preflight_headers
from ._cors import parse_cors as parse_cors
from ._escapes import compile_html as compile_html
from ._escapes import compile_url as compile_url
from ._fields import Fields as Fields
from ._fields import parse_yaml as parse_yaml
from ._json import JSON as JSON
from ._mailbox import Mailbox as Mailbox
from ._mailbox import MailboxStatistics as MailboxStatistics
from ._mailbox import Reservation as Reservation
from ._problem import problem_body as problem_body
from ._problem import problem_headers as problem_headers
from ._problem import rejection_problem as rejection_problem
from ._regex import compile_regex as compile_regex
from ._router import Router as Router
from ._templates import Compiled as Compiled
from ._templates import compile_value as compile_value
from ._units import format_duration as format_duration
from ._units import format_size as format_size
from ._units import parse_duration as parse_duration
from ._xml import parse_xml as parse_xml
from ._xml import xml_steps as xml_steps
