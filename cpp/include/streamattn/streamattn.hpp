// streamattn/streamattn.hpp — everything in one include.
#pragma once

#include "streamattn/ams_sketch.hpp"
#include "streamattn/build_info.hpp"
#include "streamattn/common.hpp"
#include "streamattn/count_sketch.hpp"
#include "streamattn/dense_sketch.hpp"
#include "streamattn/exact_attention.hpp"
#include "streamattn/gaussian_sketch.hpp"
#include "streamattn/gemm_probe.hpp"
#include "streamattn/isa.hpp"
#include "streamattn/kwise_hash.hpp"
#include "streamattn/poly_attention.hpp"
#include "streamattn/seeding.hpp"
#include "streamattn/serialize.hpp"
#include "streamattn/taylor_features.hpp"
#include "streamattn/validate.hpp"
