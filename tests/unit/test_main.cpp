#include <gtest/gtest.h>
#include <torch/torch.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  at::set_num_threads(1);  // deterministic reductions, and ctest runs binaries in parallel
  return RUN_ALL_TESTS();
}
