#include "model.hpp"

int main(int argc, char** argv) {
  return acceptbench::server_main(argc, argv, acceptbench::kModel, acceptbench::run_model);
}
