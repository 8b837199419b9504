"""The bundled `reviews` task: generated product and movie reviews, a WordPiece vocabulary and a gold scorer."""
