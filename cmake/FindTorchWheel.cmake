# Locate LibTorch inside the pinned PyPI torch wheel unless the user pointed Torch_DIR
# (or CMAKE_PREFIX_PATH) at another LibTorch.
if(NOT Torch_DIR AND NOT DEFINED ENV{Torch_DIR})
  set(_anchor_python "${ANCHOR_VENV}/bin/python")
  if(NOT EXISTS "${_anchor_python}")
    message(FATAL_ERROR
      "No LibTorch: neither Torch_DIR is set nor does ${_anchor_python} exist.\n"
      "Run scripts/setup.sh (installs the pinned torch wheel into ${ANCHOR_VENV}) or pass "
      "-DTorch_DIR=/path/to/libtorch/share/cmake/Torch.")
  endif()
  execute_process(
    COMMAND "${_anchor_python}" -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
    OUTPUT_VARIABLE _anchor_torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _anchor_rc)
  if(NOT _anchor_rc EQUAL 0)
    message(FATAL_ERROR "${_anchor_python} could not import torch (exit ${_anchor_rc}); rerun scripts/setup.sh")
  endif()
  list(APPEND CMAKE_PREFIX_PATH "${_anchor_torch_prefix}")
  set(ANCHOR_PYTHON "${_anchor_python}" CACHE FILEPATH "Python used by tests as the HF reference")
endif()
if(NOT ANCHOR_PYTHON)
  find_program(ANCHOR_PYTHON NAMES python3)
endif()

