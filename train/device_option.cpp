#include "train/device_option.h"

#include "core/error.h"

namespace smyrf::train {

Device device_option(const std::string& name, const char* op) {
  SMYRF_CHECK_HINT(name == "cpu" || name == "cuda", op, "unknown device '" << name << "'",
                   "use --device cpu or --device cuda");
  const Device dev = name == "cpu" ? Device::cpu() : Device::cuda(0);
  require_device(dev, op);
  return dev;
}

}  // namespace smyrf::train
