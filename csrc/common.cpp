#include "common.h"

namespace vpunas {
const char* version() { return "0.1.0"; }
}  // namespace vpunas
