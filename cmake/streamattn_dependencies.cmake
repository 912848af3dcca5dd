# How streamattn finds what it depends on. Nothing is vendored and nothing is downloaded:
# Eigen comes from the system or from the cmeel-eigen PyPI package, pybind11 from PyPI,
# Google Benchmark and Catch2 from the system (Debian: libbenchmark-dev, catch2).

# Ask the Python interpreter for cmeel's prefix (cmeel-eigen installs Eigen3Config.cmake under
# <site-packages>/cmeel.prefix, which CMake does not search on its own).
function(_streamattn_cmeel_prefix out)
  if(Python_EXECUTABLE)
    set(_py "${Python_EXECUTABLE}")
  elseif(PYTHON_EXECUTABLE)
    set(_py "${PYTHON_EXECUTABLE}")
  else()
    find_program(_streamattn_python NAMES python3 python)
    set(_py "${_streamattn_python}")
  endif()
  set(${out} "" PARENT_SCOPE)
  if(_py)
    execute_process(COMMAND "${_py}" -m cmeel cmake
                    OUTPUT_VARIABLE _prefix OUTPUT_STRIP_TRAILING_WHITESPACE
                    ERROR_QUIET RESULT_VARIABLE _rc)
    if(_rc EQUAL 0 AND _prefix)
      string(REPLACE ":" ";" _prefix "${_prefix}")
      set(${out} "${_prefix}" PARENT_SCOPE)
    endif()
  endif()
endfunction()

macro(streamattn_find_eigen)
  if(NOT TARGET Eigen3::Eigen)
    find_package(Eigen3 3.4 CONFIG QUIET NO_SYSTEM_ENVIRONMENT_PATH)
    if(NOT Eigen3_FOUND)
      _streamattn_cmeel_prefix(_streamattn_cmeel)
      if(_streamattn_cmeel)
        list(APPEND CMAKE_PREFIX_PATH ${_streamattn_cmeel})
      endif()
      find_package(Eigen3 3.4 CONFIG REQUIRED)
    endif()
    message(STATUS "streamattn: Eigen ${Eigen3_VERSION} from ${Eigen3_DIR}")
  endif()
endmacro()

macro(streamattn_find_pybind11)
  if(NOT TARGET pybind11::module)
    find_package(Python 3.9 COMPONENTS Interpreter Development.Module REQUIRED)
    if(NOT pybind11_DIR)
      execute_process(COMMAND "${Python_EXECUTABLE}" -m pybind11 --cmakedir
                      OUTPUT_VARIABLE pybind11_DIR OUTPUT_STRIP_TRAILING_WHITESPACE)
    endif()
    find_package(pybind11 CONFIG REQUIRED)
  endif()
endmacro()

macro(streamattn_find_benchmark)
  find_package(benchmark REQUIRED)
endmacro()

macro(streamattn_find_catch2)
  find_package(Catch2 2 QUIET)
endmacro()
