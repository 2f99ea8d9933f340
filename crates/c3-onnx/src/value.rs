//! [`Value`]: a graph value as the builder hands it out, its name with its element
//! type, so every node's inputs carry their types and a missing `Cast` fails when the
//! graph is built, naming the node, not when ONNX Runtime loads the model.

use std::fmt;
use std::sync::Arc;

use crate::dtype::ElemType;

/// A value defined in a graph (input, initializer, constant or node output). Cheap to
/// clone; only the [`crate::GraphBuilder`] that defined it makes one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Value {
    name: Arc<str>,
    elem: ElemType,
}

impl Value {
    pub(crate) fn new(name: &str, elem: ElemType) -> Self {
        Value {
            name: name.into(),
            elem,
        }
    }

    /// The value's name in the graph.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its element type.
    pub fn elem(&self) -> ElemType {
        self.elem
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` ({})", self.name, self.elem)
    }
}
