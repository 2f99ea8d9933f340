fn main(){ c3_torch::_x(); c3_core::_x(); }
