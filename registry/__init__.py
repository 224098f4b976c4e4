"""Pure-Python domain of the simulated national population registry (Cơ sở dữ liệu quốc gia về dân cư)."""
