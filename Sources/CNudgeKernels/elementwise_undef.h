// Clears the per-instruction-set macros elementwise.c defines before each inclusion of
// elementwise_body.h, so the next set can define them again.
#undef TARGET
#undef SFX
#undef W
#undef vf
#undef vld
#undef vst
#undef vldn
#undef vstn
#undef vzeron
#undef vset
#undef vadd
#undef vsub
#undef vmul
#undef vdiv
#undef vmin
#undef vmax
#undef vneg
#undef vzero_lt
#undef vexp2i
#undef vsum16
#undef vmax16
