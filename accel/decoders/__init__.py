"""Frame decoders as plug-ins, in the manner of ``pydicom.pixels.decoders``.

Each module offers ``can_decode(spec)`` and ``decode(spec, indices, pool)`` over a
:class:`accel.decoders.base.PixelSpec`; :func:`accel.decode.decode_frames` tries them in the
order of ``accel.decode.DECODERS``: :mod:`~accel.decoders.turbo` (JPEG Baseline through
libjpeg-turbo), :mod:`~accel.decoders.native` (uncompressed greyscale read with numpy), then
:mod:`~accel.decoders.pydicom` (pydicom's pixel pipeline, for everything else).
"""
