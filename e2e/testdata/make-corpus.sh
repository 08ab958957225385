#!/usr/bin/env bash
# e2e/testdata/make-corpus.sh — writes e2e/testdata/corpus/, the image files
# the real-server tests send (see corpus/README.txt for what each one is).
# Needs ImageMagick 6 (`convert`) and python3. The files are committed; run
# this only to remake them (the output is deterministic for one ImageMagick
# version, not across versions).
set -euo pipefail
cd "$(dirname "$0")/corpus"
rm -f ./*.jpg ./*.png ./*.gif ./*.webp
C="convert -define png:exclude-chunks=date,time +set date:create +set date:modify"
# Valid images of several sizes. A gradient with a few shapes on it, so that
# resizing has something to do; -strip drops timestamps and comments.
pic() { # size out [extra convert options]
	local size=$1 out=$2; shift 2
	$C -size "$size" gradient:steelblue-orange \
		-fill white -draw "circle 20,20 30,30" -fill black -draw "rectangle 5,40 60,50" \
		"$@" -strip "$out"
}
pic 64x48 small.jpg -quality 85
pic 640x480 medium.jpg -quality 85
pic 1600x1200 large.jpg -quality 80
pic 32x32 small.png
pic 400x300 medium.png
pic 1024x768 large.png -colors 64
pic 16x16 tiny.gif
pic 300x200 medium.gif
pic 100x80 small.webp -quality 80
pic 500x400 medium.webp -quality 80
pic 640x480 progressive.jpg -interlace JPEG -quality 85
pic 300x300 gray.jpg -colorspace Gray -quality 85
pic 200x150 interlaced.png -interlace PNG
# CMYK JPEG (as print workflows write them).
pic 320x240 cmyk.jpg -colorspace CMYK -quality 85
# Transparent PNG: an opaque disc on a fully transparent field.
$C -size 200x200 xc:none -fill 'rgba(200,30,30,0.8)' -draw "circle 100,100 100,30" -strip transparent.png
# Animated GIF: three frames, 10/100 s each, looping.
$C -delay 10 -loop 0 -size 120x90 xc:red xc:green xc:blue -strip animated.gif
# EXIF-rotated JPEG: 300x200 pixels stored, EXIF Orientation 6 (display
# rotated 90° clockwise, 200x300). ImageMagick 6 writes no EXIF block of its
# own, so python inserts a minimal APP1 Exif segment with one IFD0 entry
# (tag 0x0112 Orientation, SHORT, 6) right after SOI.
pic 300x200 exif-rotated.jpg -quality 85
python3 - exif-rotated.jpg <<'PY'
import struct, sys
p = sys.argv[1]
d = open(p, 'rb').read()
assert d[:2] == b'\xff\xd8'
tiff = b'MM\x00\x2a' + struct.pack('>I', 8) + struct.pack('>H', 1) + \
    struct.pack('>HHIHH', 0x0112, 3, 1, 6, 0) + struct.pack('>I', 0)
app1 = b'Exif\x00\x00' + tiff
seg = b'\xff\xe1' + struct.pack('>H', len(app1) + 2) + app1
open(p, 'wb').write(d[:2] + seg + d[2:])
PY
# Broken files: a JPEG cut in half, bytes that are no image with image
# names, text named .png, and an empty file.
head -c "$(($(stat -c %s medium.jpg) / 2))" medium.jpg >truncated.jpg
python3 -c 'import random,sys; random.seed(18); sys.stdout.buffer.write(bytes(random.getrandbits(8) for _ in range(3000)))' >garbage.jpg
printf 'this is not a PNG, only text with an image name\n' >garbage.png
head -c 100 medium.gif >truncated.gif
: >empty.jpg
# Decompression bombs: valid headers claiming 30000x30000 pixels (2.7 GB
# as RGB), tiny files with no pixel data, so a decoder that reads the header
# (or allocates from it) sees the claim, and a full decode fails at once.
# bomb.png: a PNG signature, a real IHDR (with its CRC) and IEND (with a few
# rows of IDAT, libvips spends 10 s padding the rest). bomb.jpg: small.jpg
# with its SOF0 frame size patched to 30000x30000, cut before its scan (SOS)
# and closed with EOI (with the scan data, libgd under nginx's image_filter
# spends 14 s and GBs on it; at 65535x65535 imageproxy's Go decoder reached
# 6.3 GB RSS). bomb.gif: a 1x1 image on a 30000x30000 logical screen.
python3 - <<'PY'
import struct, zlib
def chunk(t, b):
    return struct.pack('>I', len(b)) + t + b + struct.pack('>I', zlib.crc32(t + b) & 0xffffffff)
w = h = 30000
ihdr = struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)
png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IEND', b'')
open('bomb.png', 'wb').write(png)
d = bytearray(open('small.jpg', 'rb').read())
i = 2
while True:
    assert d[i] == 0xff
    m, n = d[i + 1], struct.unpack('>H', d[i + 2:i + 4])[0]
    if m in (0xc0, 0xc1, 0xc2):
        struct.pack_into('>HH', d, i + 5, h, w)
    if m == 0xda:
        d = d[:i] + b'\xff\xd9'  # cut at SOS, end with EOI
        break
    i += 2 + n
open('bomb.jpg', 'wb').write(bytes(d))
# bomb.gif: a 1x1 image on a 30000x30000 logical screen.
gif = b'GIF89a' + struct.pack('<HH', w, h) + b'\x80\x00\x00' + b'\x00\x00\x00\xff\xff\xff' + \
    b'\x2c' + struct.pack('<HHHH', 0, 0, 1, 1) + b'\x00' + b'\x02\x02\x44\x01\x00' + b'\x3b'
open('bomb.gif', 'wb').write(gif)
PY
# Animated WebP: the three frames of animated.gif.
$C animated.gif -strip animated.webp
ls -l
du -ch . | tail -1
