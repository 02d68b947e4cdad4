"""The bottom layer: Linux calls and id mapping shared by garden, images and netns; imports nothing of Trellis."""
