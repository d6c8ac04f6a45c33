/* A plugin for tests/prof/reload.c, built twice with different FRAME sizes: the same code bytes at the
 * same addresses (the subtraction's immediate is always 4 bytes), different unwind rules for f's call
 * of malloc. */
	.text
	.globl f
	.type f,@function
f:
	.cfi_startproc
	.byte 0x48, 0x81, 0xec          /* sub $FRAME, %rsp */
	.long FRAME
	.cfi_adjust_cfa_offset FRAME
	movl $4000, %edi
	call malloc@PLT
	.byte 0x48, 0x81, 0xc4          /* add $FRAME, %rsp */
	.long FRAME
	.cfi_adjust_cfa_offset -FRAME
	ret
	.cfi_endproc
	.size f, .-f
	.section .note.GNU-stack,"",@progbits
