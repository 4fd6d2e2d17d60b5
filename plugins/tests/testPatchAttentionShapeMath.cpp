/*
 * Test of patchAttentionShapeMath.h (cell count, workspace bytes, divisibility), the size arithmetic the TensorRT
 * plugin uses to size its workspace from a profile's kMAX and to reject profiles. Standard C++ only: built and run
 * by tests/plugins/test_plugin_shape_math.py with the host C++ compiler (no CUDA, no TensorRT). Exit status 0 when every
 * check passes, 1 otherwise.
 */
#include "patchAttentionShapeMath.h"

#include <cstdint>
#include <cstdio>

namespace
{

int gPassed = 0;
int gFailed = 0;

void check(bool ok, char const* what, long long got, long long expected)
{
    std::printf("%s %s: got %lld, expected %lld\n", ok ? "PASS" : "FAIL", what, got, expected);
    if (ok)
    {
        ++gPassed;
    }
    else
    {
        ++gFailed;
    }
}

void expectCells(char const* what, int64_t n, int64_t c, int64_t gridH, int64_t gridW, int64_t expected)
{
    int64_t const got = dsrir::patchAttentionCellCount(n, c, gridH, gridW);
    check(got == expected, what, static_cast<long long>(got), static_cast<long long>(expected));
}

void expectBytes(char const* what, int64_t n, int64_t c, int64_t gridH, int64_t gridW, uint64_t expected)
{
    size_t const got = dsrir::patchAttentionWorkspaceBytes(n, c, gridH, gridW);
    check(got == expected, what, static_cast<long long>(got), static_cast<long long>(expected));
}

void expectDivisible(char const* what, int64_t size, int64_t grid, bool expected)
{
    bool const got = dsrir::patchAttentionDivisible(size, grid);
    check(got == expected, what, got ? 1 : 0, expected ? 1 : 0);
}

void testCellCount()
{
    int64_t const limit = INT64_C(0x7FFFFFFF);
    expectCells("cells 1x64 grid 8x8", 1, 64, 8, 8, 4096);
    expectCells("cells of an empty batch", 0, 64, 8, 8, 0);
    expectCells("cells 2^31 - 2^18 (largest power-of-two grid below the limit)", 1, 8191, 512, 512,
        INT64_C(0x7FFC0000));
    expectCells("cells 2^31 - 1 exactly", 1, 1, 1, limit, limit);
    expectCells("cells 2^31 rejected", 1, 8192, 512, 512, -1);
    expectCells("cells 2^31 in the batch factor rejected", INT64_C(0x80000000), 1, 1, 1, -1);
    expectCells("cells of int32 max factors rejected (no int64 overflow)", limit, limit, limit, limit, -1);
    expectCells("cells of int64 max factors rejected (no int64 overflow)", INT64_MAX, INT64_MAX, 1, 1, -1);
    expectCells("unknown N (-1) rejected", -1, 64, 8, 8, -1);
    expectCells("unknown C (-1) rejected", 1, -1, 8, 8, -1);
    expectCells("grid_h 0 rejected", 1, 64, 0, 8, -1);
    expectCells("grid_w -4 rejected", 1, 64, 8, -4, -1);
}

void testWorkspaceBytes()
{
    expectBytes("workspace 1x64 grid 8x8: 4096 cells, 16384 bytes a region", 1, 64, 8, 8, 2 * 16384);
    expectBytes("workspace 4x96 grid 8x8: 24576 cells", 4, 96, 8, 8, 2 * 98304);
    expectBytes("workspace 12 bytes rounded up to 256 a region", 1, 3, 2, 2, 2 * 256);
    expectBytes("workspace 260 bytes rounded up to 512 a region", 1, 65, 1, 1, 2 * 512);
    expectBytes("workspace at 2^31 - 2^18 cells", 1, 8191, 512, 512, UINT64_C(2) * 0x7FFC0000 * 4);
    expectBytes("workspace at 2^31 cells: 0 (rejected)", 1, 8192, 512, 512, 0);
    expectBytes("workspace of an empty batch: 0", 0, 64, 8, 8, 0);
    expectBytes("workspace with unknown N: 0", -1, 64, 8, 8, 0);

    // The workspace depends on N, C and the grid only, and grows with N and C: the kMAX N and C of a profile cover
    // every smaller shape, whatever H and W are.
    bool monotonic = true;
    for (int64_t gridH = 1; gridH <= 16; gridH *= 2)
    {
        for (int64_t c = 1; c <= 96; c += 5)
        {
            size_t previous = 0;
            for (int64_t n = 0; n <= 16; ++n)
            {
                size_t const bytes = dsrir::patchAttentionWorkspaceBytes(n, c, gridH, 3);
                monotonic = monotonic && bytes >= previous && bytes % (2 * dsrir::kPA_WORKSPACE_ALIGN) == 0
                    && bytes >= static_cast<size_t>(2 * n * c * gridH * 3) * sizeof(float)
                    && dsrir::patchAttentionWorkspaceBytes(n, c + 1, gridH, 3) >= bytes;
                previous = bytes;
            }
        }
    }
    check(monotonic, "workspace grows with N and C and covers 2 float regions", monotonic ? 1 : 0, 1);
}

void testDivisible()
{
    expectDivisible("1080 % 8", 1080, 8, true);
    expectDivisible("1081 % 8", 1081, 8, false);
    expectDivisible("0 % 8 (empty)", 0, 8, true);
    expectDivisible("unknown size (-1)", -1, 8, false);
    expectDivisible("grid 0", 64, 0, false);
    expectDivisible("grid -8", 64, -8, false);
    expectDivisible("int64 size", INT64_C(1) << 40, 1024, true);
}

} // namespace

int main()
{
    testCellCount();
    testWorkspaceBytes();
    testDivisible();
    std::printf("%d passed, %d failed\n", gPassed, gFailed);
    return gFailed == 0 ? 0 : 1;
}
