"""Declare an embodiment's parameters on a node and read them back as a faster_core Embodiment.

The launch files load ``faster_bringup/config/<embodiment>.yaml`` as parameters; declaring exactly the names in
``faster_core.embodiment.PARAMETERS`` lets every node read the same spec the offline tools read from the file.
"""

from __future__ import annotations

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from faster_core.embodiment import OPTIONAL_PARAMETERS, PARAMETERS, Embodiment, EmbodimentError

_TYPES = {
    "string": Parameter.Type.STRING,
    "string_array": Parameter.Type.STRING_ARRAY,
    "integer": Parameter.Type.INTEGER,
    "integer_array": Parameter.Type.INTEGER_ARRAY,
    "double": Parameter.Type.DOUBLE,
    "double_array": Parameter.Type.DOUBLE_ARRAY,
}


def declare_embodiment(node: Node) -> Embodiment:
    """Declare the embodiment parameters (read-only: the robot does not change under a running node) and parse them.

    Raises EmbodimentError naming the first missing or invalid parameter.
    """
    for name, (kind, description) in PARAMETERS.items():
        node.declare_parameter(name, _TYPES[kind], ParameterDescriptor(description=description, read_only=True))
    values = {}
    for name, (kind, _) in PARAMETERS.items():
        try:
            value = node.get_parameter(name).value
        except ParameterUninitializedException as error:
            if name in OPTIONAL_PARAMETERS:
                continue
            raise EmbodimentError(
                f"parameter {name!r} is not set: load an embodiment file (faster_bringup/config/<embodiment>.yaml)"
            ) from error
        values[name] = list(value) if kind.endswith("_array") else value
    return Embodiment.from_parameters(values)
