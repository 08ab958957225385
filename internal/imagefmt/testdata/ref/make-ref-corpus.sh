#!/usr/bin/env bash
# Makes the reference-decoding corpus of internal/imagefmt (reference_test.go)
# with real encoders, from pictures ImageMagick draws itself. Run it from
# anywhere; it rewrites the files next to it. The test needs only the
# reference decoders (dwebp, djpeg, ImageMagick's convert), not this script.
#
#   apt-get install -y webp libjpeg-turbo-progs libvips-tools imagemagick
#
# Made with cwebp 1.2.4, cjpeg (libjpeg-turbo 2.1.5), vips 8.14.1 and
# ImageMagick 6.9.11-60 (Debian 12).
set -euo pipefail
cd "$(dirname "$0")"
IM=/usr/bin/convert # ImageMagick itself, whatever wraps it on PATH
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Sources. photo: smooth colour fields with hard edges and text (the logo
# over a blurred plasma), odd width and height so that every decoder's
# last chroma column and row are exercised. alpha: the same with a
# transparency ramp and a fully transparent hole. small: the 70x46 rose.
"$IM" -seed 7 -size 321x241 plasma:red-blue -blur 0x3 "$tmp/plasma.png"
"$IM" logo: -resize 321x241! "$tmp/logo.png"
"$IM" "$tmp/plasma.png" "$tmp/logo.png" -compose multiply -composite -strip "$tmp/photo.png"
"$IM" -size 241x321 gradient:white-black -rotate 90 -fill black -draw "circle 160,120 160,150" "$tmp/mask.png"
"$IM" "$tmp/photo.png" "$tmp/mask.png" -alpha off -compose copy_opacity -composite -strip "$tmp/alpha.png"
"$IM" rose: -strip "$tmp/small.png"
"$IM" "$tmp/photo.png" -resize 160x120! -strip "$tmp/photo-small.png"

# WebP: lossy, lossless, lossy with alpha (cwebp keeps alpha in an ALPH
# chunk, lossless-compressed and filtered), lossy odd-sized small.
cwebp -quiet -q 80 "$tmp/photo.png" -o webp-lossy.webp
cwebp -quiet -q 60 -sns 100 -f 60 "$tmp/small.png" -o webp-lossy-small.webp
cwebp -quiet -lossless "$tmp/photo-small.png" -o webp-lossless.webp
cwebp -quiet -q 75 -alpha_filter best "$tmp/alpha.png" -o webp-lossy-alpha.webp
cwebp -quiet -lossless "$tmp/alpha.png" -o webp-lossless-alpha.webp

# JPEG: cjpeg 4:2:0, 4:2:2, 4:4:4, progressive, grey, restart markers
# (sequential, and progressive 4:2:2); libvips (4:2:0);
# ImageMagick 4:2:0, 4:4:4 and CMYK (Adobe, inverted).
"$IM" "$tmp/photo.png" "$tmp/photo.ppm"
cjpeg -quality 85 -sample 2x2 "$tmp/photo.ppm" >jpeg-cjpeg-420.jpg
cjpeg -quality 85 -sample 2x1 "$tmp/photo.ppm" >jpeg-cjpeg-422.jpg
cjpeg -quality 90 -sample 1x1 "$tmp/photo.ppm" >jpeg-cjpeg-444.jpg
cjpeg -quality 80 -progressive "$tmp/photo.ppm" >jpeg-cjpeg-progressive.jpg
cjpeg -quality 85 -grayscale "$tmp/photo.ppm" >jpeg-cjpeg-gray.jpg
cjpeg -quality 85 -restart 3B "$tmp/photo.ppm" >jpeg-cjpeg-restart.jpg
cjpeg -quality 70 -progressive -restart 1 -sample 2x1 "$tmp/photo.ppm" >jpeg-cjpeg-progressive-restart-422.jpg
vips jpegsave "$tmp/photo.png" jpeg-vips.jpg --Q 80 --strip
"$IM" "$tmp/photo.png" -quality 85 -sampling-factor 4:2:0 jpeg-magick-420.jpg
"$IM" "$tmp/photo.png" -quality 92 -sampling-factor 4:4:4 jpeg-magick-444.jpg
"$IM" "$tmp/photo.png" -colorspace CMYK -quality 85 jpeg-magick-cmyk.jpg
"$IM" "$tmp/small.png" -quality 75 -sampling-factor 4:2:0 jpeg-magick-small.jpg

# PNG: 8-bit RGB, RGBA, 16-bit RGB and RGBA, paletted (with a transparent
# index), grey, 16-bit grey.
"$IM" "$tmp/photo-small.png" png24:png-rgb8.png
"$IM" "$tmp/alpha.png" -resize 160x120! png32:png-rgba8.png
"$IM" "$tmp/photo-small.png" -depth 16 png48:png-rgb16.png
"$IM" "$tmp/alpha.png" -resize 160x120! -depth 16 png64:png-rgba16.png
"$IM" "$tmp/alpha.png" -resize 160x120! -colors 200 png8:png-paletted.png
"$IM" "$tmp/photo-small.png" -colorspace Gray -depth 8 png-gray8.png
"$IM" "$tmp/photo-small.png" -colorspace Gray -depth 16 png-gray16.png

# GIF (paletted, with a transparent index), BMP, TIFF (8-bit LZW, 16-bit).
"$IM" "$tmp/alpha.png" -resize 160x120! gif-transparent.gif
"$IM" "$tmp/photo-small.png" -colors 64 gif-photo.gif
"$IM" "$tmp/photo-small.png" bmp3:bmp-rgb24.bmp
"$IM" "$tmp/small.png" -compress LZW tiff-rgb8-lzw.tif
"$IM" "$tmp/photo-small.png" -depth 16 -compress Zip tiff-rgb16-zip.tif
ls -l
