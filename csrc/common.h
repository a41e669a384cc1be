// Shared error types of the vpunas C++ core. No Python or torch here.
#pragma once
#include <stdexcept>
#include <string>

namespace vpunas {

// Bad input from a caller or a file (corrupt model, invalid argument). Bound to Python ValueError.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace vpunas
