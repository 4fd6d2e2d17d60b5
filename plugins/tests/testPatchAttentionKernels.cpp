/*
 * Test of the patch-attention CUDA kernels (patchAttentionKernel.h) against a double-precision CPU reference.
 *
 *   test_patch_attention_kernels          host checks (shapes, workspace sizes, argument errors, fp16
 *                                          conversion), then the GPU cases; exit 77 (ctest: skipped) when
 *                                          there is no CUDA device, 1 on any failure
 *   test_patch_attention_kernels --bench  timings of C=64 1080p fp16/fp32 against a device-to-device copy
 *
 * Error metric, per element: |gpu - ref| / max(|res| * A + |skip|, 1e-3). Float rounding in a correct
 * implementation is proportional to the magnitudes of the terms summed, not to the sum, so this stays small
 * where res * A and skip cancel; the 1e-3 floor covers values near zero (fp16 subnormals round in absolute
 * steps of 6e-8). Limits: 1e-5 for fp32, 2e-3 for fp16 (one fp16 rounding of the output is <= 4.9e-4).
 */
#include "patchAttentionKernel.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace
{

using dsrir::PatchAttentionShape;
using dsrir::PatchAttentionType;

constexpr int kSkipped = 77;
constexpr double kTolFloat = 1e-5;
constexpr double kTolHalf = 2e-3;
constexpr double kErrFloor = 1e-3;

int gPassed = 0;
int gFailed = 0;

void report(bool ok, std::string const& line)
{
    std::printf("%s %s\n", ok ? "PASS" : "FAIL", line.c_str());
    std::fflush(stdout);
    if (ok)
    {
        ++gPassed;
    }
    else
    {
        ++gFailed;
    }
}

//! Prints the failing CUDA call; returns whether err is cudaSuccess.
bool checkCuda(cudaError_t err, char const* what)
{
    if (err != cudaSuccess)
    {
        std::printf("CUDA error in %s: %s (%s)\n", what, cudaGetErrorName(err), cudaGetErrorString(err));
    }
    return err == cudaSuccess;
}

std::string shapeText(PatchAttentionShape const& s)
{
    char text[160];
    std::snprintf(text, sizeof(text), "n=%d c=%d h=%d w=%d grid=%dx%d hidden=%d", s.n, s.c, s.h, s.w, s.gridH,
        s.gridW, s.hidden);
    return text;
}

// ------------------------------------------------------------------------------------------------ fp16 on the host

//! Exact value of IEEE binary16 bits.
float halfToFloat(uint16_t bits)
{
    int const exponent = (bits >> 10) & 0x1F;
    int const mantissa = bits & 0x3FF;
    float value = 0.F;
    if (exponent == 0)
    {
        value = std::ldexp(static_cast<float>(mantissa), -24);
    }
    else if (exponent == 31)
    {
        value = mantissa != 0 ? NAN : INFINITY;
    }
    else
    {
        value = std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
    }
    return (bits & 0x8000) != 0 ? -value : value;
}

//! Nearest binary16 (ties to even, under the default rounding mode of nearbyint).
uint16_t floatToHalf(float f)
{
    uint16_t const sign = std::signbit(f) ? 0x8000 : 0;
    float const a = std::fabs(f);
    if (std::isnan(f))
    {
        return 0x7E00;
    }
    if (a >= 65520.F)
    {
        return sign | 0x7C00;
    }
    if (a < std::ldexp(1.F, -14))
    {
        // zero and subnormals: multiples of 2^-24; rounding up to 0x400 gives the smallest normal, as it should
        return sign | static_cast<uint16_t>(std::nearbyint(std::ldexp(a, 24)));
    }
    int e = 0;
    float const m = std::frexp(a, &e); // a = m * 2^e, m in [0.5, 1)
    int q = static_cast<int>(std::nearbyint(std::ldexp(m, 11)));
    if (q == 2048)
    {
        q = 1024;
        ++e;
    }
    // a = (q / 1024) * 2^(e - 1), biased exponent e - 1 + 15
    return sign | static_cast<uint16_t>((e + 14) << 10) | static_cast<uint16_t>(q - 1024);
}

// ------------------------------------------------------------------------------------------------ host checks

void testHalfConversion()
{
    int mismatches = 0;
    for (uint32_t bits = 0; bits <= 0xFFFF; ++bits)
    {
        bool const finite = ((bits >> 10) & 0x1F) != 31;
        if (finite && floatToHalf(halfToFloat(static_cast<uint16_t>(bits))) != bits)
        {
            ++mismatches;
        }
    }
    bool const rounding = floatToHalf(1.F + std::ldexp(1.F, -11)) == 0x3C00 // tie to even
        && floatToHalf(1.F + 3 * std::ldexp(1.F, -11)) == 0x3C02 && floatToHalf(65519.F) == 0x7BFF
        && floatToHalf(65520.F) == 0x7C00 && halfToFloat(0x0001) == std::ldexp(1.F, -24);
    report(mismatches == 0 && rounding,
        "host fp16 conversion round trip (" + std::to_string(mismatches) + " mismatches), rounding "
            + (rounding ? "ok" : "wrong"));
}

void testCheckShape()
{
    struct Expect
    {
        PatchAttentionShape shape;
        bool valid;
    };
    Expect const expects[] = {
        {{1, 64, 1080, 1920, 8, 8, 8}, true},
        {{4, 96, 1080, 1920, 1, 1, 12}, true},
        {{1, 3, 5, 7, 5, 7, 1}, true},
        {{1, 64, 1081, 1920, 8, 8, 8}, false}, // H % gridH
        {{1, 64, 1080, 1922, 8, 8, 8}, false}, // W % gridW
        {{1, 64, 4, 4, 8, 8, 8}, false},       // grid larger than the image
        {{0, 64, 64, 64, 8, 8, 8}, false},
        {{1, 0, 64, 64, 8, 8, 8}, false},
        {{1, 64, -8, 64, 8, 8, 8}, false},
        {{1, 64, 64, 0, 8, 8, 8}, false},
        {{1, 64, 64, 64, 0, 8, 8}, false},
        {{1, 64, 64, 64, 8, -8, 8}, false},
        {{1, 64, 64, 64, 8, 8, 0}, false},
        {{1, 64, 65536, 65536, 1, 1, 8}, false}, // plane beyond int indexing
        {{4096, 4096, 64, 64, 1, 1, 8}, false},  // N * C * H beyond int indexing
        {{1, 12288, 8, 8, 1, 1, 1}, false},      // C + hidden over the MLP's shared memory
        {{1, 12000, 8, 8, 1, 1, 288}, true},
        // N * C * gridH * gridW cells: at most 2^31 - 1 (at 2^31 the cell-sum plan divided by zero)
        {{1, 8191, 16384, 16384, 512, 512, 8}, true},      // 2^31 - 2^18 cells
        {{1, 8192, 16384, 16384, 512, 512, 8}, false},     // 2^31 cells
        {{1, 8192, 65536, 8192, 65536, 8192, 8}, false},   // 2^42 cells (1-pixel cells)
    };
    for (Expect const& e : expects)
    {
        bool const valid = dsrir::patchAttentionCheckShape(e.shape) == cudaSuccess;
        report(valid == e.valid, "host checkShape " + shapeText(e.shape) + (e.valid ? " valid" : " invalid"));
    }
}

void testWorkspaceSize()
{
    struct Expect
    {
        PatchAttentionShape shape;
        size_t bytes;
    };
    Expect const expects[] = {
        {{1, 64, 1080, 1920, 8, 8, 8}, 2 * 16384},  // 4096 cells * 4 bytes, already a multiple of 256
        {{4, 96, 1080, 1920, 8, 8, 12}, 2 * 98304}, // 24576 cells
        {{1, 3, 4, 4, 1, 1, 1}, 2 * 256},           // 12 bytes, rounded up
        {{2, 5, 6, 10, 2, 2, 1}, 2 * 256},          // 40 cells: 160 bytes
        {{1, 65, 8, 8, 1, 1, 8}, 2 * 512},          // 260 bytes
        {{1, 64, 1081, 1920, 8, 8, 8}, 0},          // invalid shape
        {{1, 8191, 16384, 16384, 512, 512, 8}, 2 * (size_t{0x7FFC0000} * 4)}, // 2^31 - 2^18 cells
        {{1, 8192, 16384, 16384, 512, 512, 8}, 0},                           // 2^31 cells
    };
    for (Expect const& e : expects)
    {
        size_t const bytes = dsrir::patchAttentionWorkspaceSize(e.shape);
        report(bytes == e.bytes,
            "host workspaceSize " + shapeText(e.shape) + " = " + std::to_string(bytes) + " (expected "
                + std::to_string(e.bytes) + ")");
    }
}

//! Argument errors are reported before anything touches the GPU, so these run without one.
void testInvalidArguments()
{
    float dummy[64] = {};
    void* p = dummy;
    float const* w = dummy;
    PatchAttentionShape const good{1, 16, 16, 16, 2, 2, 2};
    PatchAttentionShape const badH{1, 16, 17, 16, 2, 2, 2};
    PatchAttentionShape const badW{1, 16, 16, 18, 4, 4, 2};
    PatchAttentionShape const tooManyCells{1, 8192, 16384, 16384, 512, 512, 8}; // 2^31 cells
    auto const run = [&](PatchAttentionType type, void const* res, float const* w1, void* out,
                         PatchAttentionShape const& s, void* ws) {
        return dsrir::patchAttentionForward(type, res, nullptr, w1, nullptr, w, nullptr, out, s, ws, nullptr);
    };
    struct Expect
    {
        char const* what;
        cudaError_t got;
    };
    Expect const expects[] = {
        {"H not divisible by the grid (fp32)", run(PatchAttentionType::kFLOAT, p, w, p, badH, p)},
        {"H not divisible by the grid (fp16)", run(PatchAttentionType::kHALF, p, w, p, badH, p)},
        {"W not divisible by the grid", run(PatchAttentionType::kHALF, p, w, p, badW, p)},
        {"2^31 cells", run(PatchAttentionType::kFLOAT, p, w, p, tooManyCells, p)},
        {"null res", run(PatchAttentionType::kFLOAT, nullptr, w, p, good, p)},
        {"null w1", run(PatchAttentionType::kFLOAT, p, nullptr, p, good, p)},
        {"null out", run(PatchAttentionType::kFLOAT, p, w, nullptr, good, p)},
        {"null workspace", run(PatchAttentionType::kFLOAT, p, w, p, good, nullptr)},
        {"misaligned workspace", run(PatchAttentionType::kFLOAT, p, w, p, good, static_cast<char*>(p) + 2)},
        {"unknown type", run(static_cast<PatchAttentionType>(7), p, w, p, good, p)},
    };
    for (Expect const& e : expects)
    {
        report(e.got == cudaErrorInvalidValue,
            std::string("host forward rejects ") + e.what + ": " + cudaGetErrorName(e.got));
    }
}

// ------------------------------------------------------------------------------------------------ GPU cases

class DeviceBuffer
{
public:
    DeviceBuffer() = default;
    DeviceBuffer(DeviceBuffer const&) = delete;
    DeviceBuffer& operator=(DeviceBuffer const&) = delete;
    ~DeviceBuffer()
    {
        if (mPtr != nullptr)
        {
            cudaFree(mPtr);
        }
    }

    cudaError_t allocate(size_t bytes)
    {
        return cudaMalloc(&mPtr, bytes > 0 ? bytes : 1);
    }

    template <typename T>
    T* at(size_t offsetBytes = 0) const
    {
        return reinterpret_cast<T*>(static_cast<char*>(mPtr) + offsetBytes);
    }

private:
    void* mPtr = nullptr;
};

class Stream
{
public:
    Stream() = default;
    Stream(Stream const&) = delete;
    Stream& operator=(Stream const&) = delete;
    ~Stream()
    {
        if (mStream != nullptr)
        {
            cudaStreamDestroy(mStream);
        }
    }

    cudaError_t create()
    {
        return cudaStreamCreateWithFlags(&mStream, cudaStreamNonBlocking);
    }

    cudaStream_t get() const
    {
        return mStream;
    }

private:
    cudaStream_t mStream = nullptr;
};

struct Case
{
    PatchAttentionShape shape;
    bool skip;
    bool bias;
    int misalign; //!< elements by which res, skip and out are moved off their allocation's alignment
};

struct Inputs
{
    std::vector<float> res, skip, w1, b1, w2, b2; //!< res and skip hold values exact in the tested type
};

Inputs makeInputs(Case const& k, bool half, std::mt19937& rng)
{
    PatchAttentionShape const& s = k.shape;
    size_t const total = static_cast<size_t>(s.n) * s.c * s.h * s.w;
    std::uniform_real_distribution<float> unit(-1.F, 1.F);
    auto const quantise = [half](float v) { return half ? halfToFloat(floatToHalf(v)) : v; };
    Inputs in;
    in.res.resize(total);
    // noise on a smooth pattern that differs per channel and image, so the cell means differ from cell to cell
    size_t i = 0;
    for (int plane = 0; plane < s.n * s.c; ++plane)
    {
        for (int y = 0; y < s.h; ++y)
        {
            for (int x = 0; x < s.w; ++x, ++i)
            {
                float const pattern
                    = 0.75F * std::sin(0.9F * plane + 2.3F * y / s.h) * std::cos(0.6F * plane + 3.1F * x / s.w);
                in.res[i] = quantise(pattern + unit(rng));
            }
        }
    }
    if (k.skip)
    {
        in.skip.resize(total);
        for (float& v : in.skip)
        {
            v = quantise(unit(rng));
        }
    }
    auto const fill = [&](std::vector<float>& v, size_t count, float scale) {
        v.resize(count);
        for (float& x : v)
        {
            x = scale * unit(rng);
        }
    };
    fill(in.w1, static_cast<size_t>(s.hidden) * s.c, 2.F / std::sqrt(static_cast<float>(s.c)));
    fill(in.w2, static_cast<size_t>(s.c) * s.hidden, 2.F / std::sqrt(static_cast<float>(s.hidden)));
    fill(in.b1, k.bias ? s.hidden : 0, 0.5F);
    fill(in.b2, k.bias ? s.c : 0, 0.5F);
    return in;
}

//! Attention weights A [N, C, gridH, gridW] in double.
std::vector<double> referenceAttention(Case const& k, Inputs const& in)
{
    PatchAttentionShape const& s = k.shape;
    int const cellH = s.h / s.gridH;
    int const cellW = s.w / s.gridW;
    int const cellsPerPlane = s.gridH * s.gridW;
    std::vector<double> mean(static_cast<size_t>(s.n) * s.c * cellsPerPlane, 0.0);
    size_t i = 0;
    for (int plane = 0; plane < s.n * s.c; ++plane)
    {
        for (int y = 0; y < s.h; ++y)
        {
            for (int x = 0; x < s.w; ++x, ++i)
            {
                mean[(static_cast<size_t>(plane) * s.gridH + y / cellH) * s.gridW + x / cellW] += in.res[i];
            }
        }
    }
    for (double& m : mean)
    {
        m /= static_cast<double>(cellH) * cellW;
    }
    std::vector<double> attn(mean.size());
    std::vector<double> hidden(s.hidden);
    for (int n = 0; n < s.n; ++n)
    {
        for (int cell = 0; cell < cellsPerPlane; ++cell)
        {
            auto const index = [&](int c) { return (static_cast<size_t>(n) * s.c + c) * cellsPerPlane + cell; };
            for (int j = 0; j < s.hidden; ++j)
            {
                double acc = k.bias ? in.b1[j] : 0.0;
                for (int c = 0; c < s.c; ++c)
                {
                    acc += static_cast<double>(in.w1[static_cast<size_t>(j) * s.c + c]) * mean[index(c)];
                }
                hidden[j] = std::max(acc, 0.0);
            }
            for (int c = 0; c < s.c; ++c)
            {
                double acc = k.bias ? in.b2[c] : 0.0;
                for (int j = 0; j < s.hidden; ++j)
                {
                    acc += static_cast<double>(in.w2[static_cast<size_t>(c) * s.hidden + j]) * hidden[j];
                }
                attn[index(c)] = 1.0 / (1.0 + std::exp(-acc));
            }
        }
    }
    return attn;
}

//! Copies values (exact in the type) to the device as float or binary16 at dst.
cudaError_t upload(std::vector<float> const& values, bool half, void* dst)
{
    if (!half)
    {
        return cudaMemcpy(dst, values.data(), values.size() * sizeof(float), cudaMemcpyHostToDevice);
    }
    std::vector<uint16_t> bits(values.size());
    std::transform(values.begin(), values.end(), bits.begin(), floatToHalf);
    return cudaMemcpy(dst, bits.data(), bits.size() * sizeof(uint16_t), cudaMemcpyHostToDevice);
}

cudaError_t download(void const* src, size_t count, bool half, std::vector<float>* values)
{
    values->resize(count);
    if (!half)
    {
        return cudaMemcpy(values->data(), src, count * sizeof(float), cudaMemcpyDeviceToHost);
    }
    std::vector<uint16_t> bits(count);
    cudaError_t const err = cudaMemcpy(bits.data(), src, count * sizeof(uint16_t), cudaMemcpyDeviceToHost);
    std::transform(bits.begin(), bits.end(), values->begin(), halfToFloat);
    return err;
}

//! Runs one case; *maxErr gets the largest error (infinity for a NaN or an unwritten element).
bool runCase(Case const& k, bool half, std::mt19937& rng, double* maxErr)
{
    PatchAttentionShape const& s = k.shape;
    size_t const total = static_cast<size_t>(s.n) * s.c * s.h * s.w;
    size_t const elem = half ? 2 : 4;
    size_t const shift = static_cast<size_t>(k.misalign) * elem;
    size_t const tensorBytes = total * elem + shift;
    Inputs const in = makeInputs(k, half, rng);

    DeviceBuffer res, skip, out, w1, b1, w2, b2, workspace;
    Stream stream;
    size_t const wsBytes = dsrir::patchAttentionWorkspaceSize(s);
    if (!checkCuda(res.allocate(tensorBytes), "cudaMalloc res")
        || !checkCuda(out.allocate(tensorBytes), "cudaMalloc out")
        || !checkCuda(skip.allocate(tensorBytes), "cudaMalloc skip")
        || !checkCuda(w1.allocate(in.w1.size() * sizeof(float)), "cudaMalloc w1")
        || !checkCuda(w2.allocate(in.w2.size() * sizeof(float)), "cudaMalloc w2")
        || !checkCuda(b1.allocate(in.b1.size() * sizeof(float)), "cudaMalloc b1")
        || !checkCuda(b2.allocate(in.b2.size() * sizeof(float)), "cudaMalloc b2")
        || !checkCuda(workspace.allocate(wsBytes), "cudaMalloc workspace") || !checkCuda(stream.create(), "stream"))
    {
        return false;
    }
    if (!checkCuda(upload(in.res, half, res.at<void>(shift)), "upload res")
        || (k.skip && !checkCuda(upload(in.skip, half, skip.at<void>(shift)), "upload skip"))
        || !checkCuda(upload(in.w1, false, w1.at<void>()), "upload w1")
        || !checkCuda(upload(in.w2, false, w2.at<void>()), "upload w2")
        || !checkCuda(upload(in.b1, false, b1.at<void>()), "upload b1")
        || !checkCuda(upload(in.b2, false, b2.at<void>()), "upload b2"))
    {
        return false;
    }
    // poison: all-ones bytes are NaN in float and in binary16, so an element the kernels skip shows up,
    // and a workspace the kernels fail to initialise spoils the means
    if (!checkCuda(cudaMemset(out.at<void>(), 0xFF, tensorBytes), "poison out")
        || !checkCuda(cudaMemset(workspace.at<void>(), 0xFF, wsBytes), "poison workspace"))
    {
        return false;
    }

    PatchAttentionType const type = half ? PatchAttentionType::kHALF : PatchAttentionType::kFLOAT;
    cudaError_t const launched = dsrir::patchAttentionForward(type, res.at<void>(shift),
        k.skip ? skip.at<void>(shift) : nullptr, w1.at<float>(), k.bias ? b1.at<float>() : nullptr, w2.at<float>(),
        k.bias ? b2.at<float>() : nullptr, out.at<void>(shift), s, workspace.at<void>(), stream.get());
    if (!checkCuda(launched, "patchAttentionForward") || !checkCuda(cudaStreamSynchronize(stream.get()), "synchronize")
        || !checkCuda(cudaGetLastError(), "after the kernels"))
    {
        return false;
    }
    std::vector<float> got;
    if (!checkCuda(download(out.at<void>(shift), total, half, &got), "download out"))
    {
        return false;
    }

    std::vector<double> const attn = referenceAttention(k, in);
    int const cellH = s.h / s.gridH;
    int const cellW = s.w / s.gridW;
    double worst = 0.0;
    size_t i = 0;
    for (int plane = 0; plane < s.n * s.c; ++plane)
    {
        for (int y = 0; y < s.h; ++y)
        {
            for (int x = 0; x < s.w; ++x, ++i)
            {
                double const a = attn[(static_cast<size_t>(plane) * s.gridH + y / cellH) * s.gridW + x / cellW];
                double const add = k.skip ? in.skip[i] : 0.0;
                double const ref = in.res[i] * a + add;
                double const scale = std::max(std::fabs(in.res[i]) * a + std::fabs(add), kErrFloor);
                double const err = std::fabs(got[i] - ref) / scale;
                worst = err <= worst ? worst : (std::isnan(err) ? INFINITY : err);
            }
        }
    }
    *maxErr = worst;
    return true;
}

std::vector<Case> makeCases()
{
    std::vector<Case> cases;
    int const grids[] = {8, 4, 2, 1};
    int const channels[] = {32, 48, 64, 80, 96};
    // cell sizes hitting every access width: 16-byte vectors (cell width 8, 24), 8 or 4 bytes (20, 6), scalars (5, 33)
    int const cells[][2] = {{3, 8}, {24, 20}, {7, 5}, {45, 6}, {8, 33}, {5, 24}};
    int index = 0;
    for (int g : grids)
    {
        for (int c : channels)
        {
            int const* cell = cells[index % 6];
            PatchAttentionShape const s{1 + index % 3, c, g * cell[0], g * cell[1], g, g, c / 8};
            cases.push_back({s, index % 2 == 0, true, 0});
            ++index;
        }
    }
    // large 1x1 and 2x2 cells, split into many row chunks, and odd cell heights
    cases.push_back({{1, 32, 360, 640, 1, 1, 4}, true, true, 0});
    cases.push_back({{1, 32, 540, 960, 1, 1, 4}, false, true, 0});
    cases.push_back({{2, 48, 8 * 45, 8 * 80, 8, 8, 6}, true, true, 0});
    cases.push_back({{1, 64, 2 * 135, 2 * 240, 2, 2, 8}, true, true, 0});
    // W not a multiple of 4 (scalar path), 1-pixel cells
    cases.push_back({{2, 32, 17, 33, 1, 1, 4}, true, true, 0});
    cases.push_back({{1, 48, 2 * 9, 2 * 5, 2, 2, 6}, false, true, 0});
    cases.push_back({{3, 32, 8, 8, 8, 8, 4}, true, true, 0});
    // pointers off 16-byte alignment: by one element (scalars), two (4 or 8 bytes), four (fp32: aligned again)
    cases.push_back({{2, 64, 4 * 24, 4 * 24, 4, 4, 8}, true, true, 1});
    cases.push_back({{2, 64, 4 * 24, 4 * 24, 4, 4, 8}, true, true, 2});
    cases.push_back({{1, 64, 4 * 24, 4 * 24, 4, 4, 8}, false, true, 4});
    // non-square grids, other hidden sizes, no biases
    cases.push_back({{2, 32, 2 * 30, 4 * 16, 2, 4, 4}, true, true, 0});
    cases.push_back({{1, 48, 4 * 12, 1 * 40, 4, 1, 6}, true, true, 0});
    cases.push_back({{2, 64, 8 * 8, 8 * 16, 8, 8, 1}, true, true, 0});
    cases.push_back({{1, 64, 8 * 8, 8 * 16, 8, 8, 40}, false, true, 0});
    cases.push_back({{1, 80, 4 * 10, 4 * 16, 4, 4, 10}, true, false, 0});
    return cases;
}

void runDeviceCases()
{
    std::mt19937 rng(20240601);
    for (Case const& k : makeCases())
    {
        for (bool half : {false, true})
        {
            double err = 0.0;
            double const tol = half ? kTolHalf : kTolFloat;
            bool const ran = runCase(k, half, rng, &err);
            char text[320];
            std::snprintf(text, sizeof(text), "%s %s skip=%d bias=%d misalign=%d max_err=%.3g (tol %.0e)",
                half ? "fp16" : "fp32", shapeText(k.shape).c_str(), k.skip, k.bias, k.misalign, ran ? err : NAN, tol);
            report(ran && err <= tol, text);
        }
    }
}

// ------------------------------------------------------------------------------------------------ benchmark

double median(std::vector<float> v)
{
    std::sort(v.begin(), v.end());
    size_t const mid = v.size() / 2;
    return v.size() % 2 != 0 ? v[mid] : 0.5 * (v[mid - 1] + v[mid]);
}

//! Median milliseconds of `runs` enqueues of `work`, timed one by one with events on `stream`.
template <typename Work>
bool timeMedian(cudaStream_t stream, int runs, Work const& work, double* ms)
{
    cudaEvent_t start = nullptr;
    cudaEvent_t stop = nullptr;
    bool ok = checkCuda(cudaEventCreate(&start), "cudaEventCreate")
        && checkCuda(cudaEventCreate(&stop), "cudaEventCreate");
    for (int i = 0; ok && i < 3; ++i) // warm-up
    {
        ok = checkCuda(work(), "warm-up");
    }
    std::vector<float> times;
    for (int i = 0; ok && i < runs; ++i)
    {
        float t = 0.F;
        ok = checkCuda(cudaEventRecord(start, stream), "cudaEventRecord") && checkCuda(work(), "timed run")
            && checkCuda(cudaEventRecord(stop, stream), "cudaEventRecord")
            && checkCuda(cudaEventSynchronize(stop), "cudaEventSynchronize")
            && checkCuda(cudaEventElapsedTime(&t, start, stop), "cudaEventElapsedTime");
        times.push_back(t);
    }
    if (start != nullptr)
    {
        cudaEventDestroy(start);
    }
    if (stop != nullptr)
    {
        cudaEventDestroy(stop);
    }
    *ms = ok ? median(times) : 0.0;
    return ok;
}

bool bench(bool half, int grid)
{
    PatchAttentionShape const s{1, 64, 1080, 1920, grid, grid, 8};
    size_t const total = static_cast<size_t>(s.n) * s.c * s.h * s.w;
    size_t const bytes = total * (half ? 2 : 4);
    std::vector<float> weights(static_cast<size_t>(s.c) * s.hidden, 0.01F);
    DeviceBuffer res, skip, out, copy, w1, b1, w2, b2, workspace;
    Stream stream;
    bool const ready = checkCuda(res.allocate(bytes), "cudaMalloc") && checkCuda(skip.allocate(bytes), "cudaMalloc")
        && checkCuda(out.allocate(bytes), "cudaMalloc") && checkCuda(copy.allocate(bytes), "cudaMalloc")
        && checkCuda(w1.allocate(weights.size() * 4), "cudaMalloc")
        && checkCuda(w2.allocate(weights.size() * 4), "cudaMalloc")
        && checkCuda(b1.allocate(s.hidden * 4), "cudaMalloc") && checkCuda(b2.allocate(s.c * 4), "cudaMalloc")
        && checkCuda(workspace.allocate(dsrir::patchAttentionWorkspaceSize(s)), "cudaMalloc")
        && checkCuda(stream.create(), "stream")
        // 0x3C bytes: small finite values in either type
        && checkCuda(cudaMemset(res.at<void>(), 0x3C, bytes), "cudaMemset")
        && checkCuda(cudaMemset(skip.at<void>(), 0x3C, bytes), "cudaMemset")
        && checkCuda(upload(weights, false, w1.at<void>()), "upload")
        && checkCuda(upload(weights, false, w2.at<void>()), "upload")
        && checkCuda(cudaMemset(b1.at<void>(), 0, s.hidden * 4), "cudaMemset")
        && checkCuda(cudaMemset(b2.at<void>(), 0, s.c * 4), "cudaMemset");
    if (!ready)
    {
        return false;
    }
    int const runs = 20;
    double opMs = 0.0;
    double copyMs = 0.0;
    PatchAttentionType const type = half ? PatchAttentionType::kHALF : PatchAttentionType::kFLOAT;
    auto const op = [&] {
        return dsrir::patchAttentionForward(type, res.at<void>(), skip.at<void>(), w1.at<float>(), b1.at<float>(),
            w2.at<float>(), b2.at<float>(), out.at<void>(), s, workspace.at<void>(), stream.get());
    };
    auto const copyOp = [&] {
        return cudaMemcpyAsync(copy.at<void>(), res.at<void>(), bytes, cudaMemcpyDeviceToDevice, stream.get());
    };
    bool const ok = timeMedian(stream.get(), runs, op, &opMs) && timeMedian(stream.get(), runs, copyOp, &copyMs);
    if (!ok)
    {
        return false;
    }
    // the op reads res twice (means, then scaling), reads skip and writes out; the copy reads and writes once
    double const opBytes = 4.0 * static_cast<double>(bytes);
    double const copyBytes = 2.0 * static_cast<double>(bytes);
    std::printf("bench %s %s skip: %.3f ms, %.0f GB/s | memcpy D2D of one tensor: %.3f ms, %.0f GB/s\n",
        half ? "fp16" : "fp32", shapeText(s).c_str(), opMs, opBytes / opMs * 1e-6, copyMs, copyBytes / copyMs * 1e-6);
    return true;
}

int deviceCount()
{
    int count = 0;
    cudaError_t const err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess)
    {
        std::printf("cudaGetDeviceCount: %s\n", cudaGetErrorString(err));
        return 0;
    }
    return count;
}

void printDevice()
{
    int device = 0;
    cudaDeviceProp prop{};
    if (cudaGetDevice(&device) == cudaSuccess && cudaGetDeviceProperties(&prop, device) == cudaSuccess)
    {
        std::printf("device %d: %s, compute capability %d.%d, %d SMs\n", device, prop.name, prop.major, prop.minor,
            prop.multiProcessorCount);
    }
}

} // namespace

int main(int argc, char** argv)
{
    bool benchMode = false;
    for (int i = 1; i < argc; ++i)
    {
        if (std::strcmp(argv[i], "--bench") == 0)
        {
            benchMode = true;
        }
        else
        {
            std::printf("usage: %s [--bench]\n", argv[0]);
            return 2;
        }
    }

    if (!benchMode)
    {
        testHalfConversion();
        testCheckShape();
        testWorkspaceSize();
        testInvalidArguments();
    }
    if (deviceCount() == 0)
    {
        std::printf("%d passed, %d failed (host checks only)\n", gPassed, gFailed);
        if (gFailed > 0)
        {
            return 1;
        }
        std::printf("no CUDA device: skipped\n");
        return kSkipped;
    }
    printDevice();

    if (benchMode)
    {
        bool ok = true;
        for (bool half : {true, false})
        {
            for (int grid : {8, 4, 2, 1})
            {
                ok = bench(half, grid) && ok;
            }
        }
        return ok ? 0 : 1;
    }

    runDeviceCases();
    std::printf("%d passed, %d failed\n", gPassed, gFailed);
    return gFailed == 0 ? 0 : 1;
}
